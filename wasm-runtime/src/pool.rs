//! A fixed set of worker threads for guest work (issue 10 item 3): guests run on at most
//! `threads` threads, so on a machine with few cores they cannot crowd out Node's event loop
//! (the default leaves it one core). Jobs wait in FIFO order for a free thread.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex};
use std::thread;

use crate::engine::lock;
use crate::error::{HostError, HostResult};

/// What a finished job hands on (its result to JS, say). It runs after the job stopped counting
/// as running, so whoever receives the result and then reads [`WorkerPool::stats`] never sees
/// that job still running.
pub type Delivery = Box<dyn FnOnce() + Send + 'static>;

type Job = Box<dyn FnOnce() -> Delivery + Send + 'static>;

/// Counters of the pool.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoolStats {
    /// Worker threads.
    pub threads: u32,
    /// Jobs running on a thread now.
    pub running: u32,
    /// Jobs waiting for a thread.
    pub queued: u32,
}

struct Shared {
    state: Mutex<Queue>,
    ready: Condvar,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    running: u32,
    closed: bool,
}

/// The pool. Dropping it lets the threads finish the queued jobs, then exit.
pub struct WorkerPool {
    shared: Arc<Shared>,
    threads: u32,
}

/// Worker threads by default: every core but one (for the event loop), at least one.
pub fn default_threads() -> u32 {
    let cores = thread::available_parallelism().map_or(1, |n| n.get());
    u32::try_from(cores.saturating_sub(1).max(1)).unwrap_or(1)
}

impl WorkerPool {
    /// Starts `threads` (1..=256) worker threads. INVALID_INPUT outside that range.
    pub fn new(threads: u32) -> HostResult<Self> {
        if !(1..=256).contains(&threads) {
            return Err(HostError::invalid(
                "workerThreads must be between 1 and 256",
            ));
        }
        let shared = Arc::new(Shared {
            state: Mutex::new(Queue::default()),
            ready: Condvar::new(),
        });
        for i in 0..threads {
            let s = Arc::clone(&shared);
            thread::Builder::new()
                .name(format!("wk-guest-{i}"))
                .spawn(move || work(&s))
                .map_err(|e| HostError::internal(format!("cannot start a worker thread: {e}")))?;
        }
        Ok(WorkerPool { shared, threads })
    }

    /// Queues `job` for the next free thread; the [`Delivery`] it returns runs on that thread once
    /// the job no longer counts as running.
    pub fn spawn(&self, job: impl FnOnce() -> Delivery + Send + 'static) {
        lock(&self.shared.state).jobs.push_back(Box::new(job));
        self.shared.ready.notify_one();
    }

    /// Threads with nothing to do now: `threads` minus jobs running and queued (0 when jobs
    /// wait). A thread delivering a finished job's result already counts as idle.
    pub fn idle(&self) -> u32 {
        let q = lock(&self.shared.state);
        let busy = q.running.saturating_add(u32::try_from(q.jobs.len()).unwrap_or(u32::MAX));
        self.threads.saturating_sub(busy)
    }

    /// Current counters.
    pub fn stats(&self) -> PoolStats {
        let q = lock(&self.shared.state);
        PoolStats {
            threads: self.threads,
            running: q.running,
            queued: u32::try_from(q.jobs.len()).unwrap_or(u32::MAX),
        }
    }
}

impl Drop for WorkerPool {
    fn drop(&mut self) {
        lock(&self.shared.state).closed = true;
        self.shared.ready.notify_all();
    }
}

fn work(shared: &Shared) {
    let mut q = lock(&shared.state);
    loop {
        if let Some(job) = q.jobs.pop_front() {
            q.running += 1;
            drop(q);
            // lib.rs catches panics inside each job; this only keeps the thread alive regardless
            let delivery = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
            lock(&shared.state).running -= 1;
            if let Ok(deliver) = delivery {
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(deliver));
            }
            q = lock(&shared.state);
        } else if q.closed {
            return;
        } else {
            q = shared.ready.wait(q).unwrap_or_else(|p| p.into_inner());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::mpsc;
    use std::time::Duration;

    fn nothing() -> Delivery {
        Box::new(|| {})
    }

    #[test]
    fn a_delivered_result_never_sees_its_job_running() {
        let pool = Arc::new(WorkerPool::new(1).unwrap());
        let (seen, read) = mpsc::channel();
        let p = Arc::clone(&pool);
        pool.spawn(move || {
            Box::new(move || seen.send((p.stats().running, p.idle())).unwrap())
        });
        assert_eq!(read.recv_timeout(Duration::from_secs(10)).unwrap(), (0, 1));
    }

    #[test]
    fn never_runs_more_jobs_at_once_than_it_has_threads() {
        let pool = WorkerPool::new(2).unwrap();
        let (now, peak) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
        let (done, finished) = mpsc::channel();
        for _ in 0..8 {
            let (now, peak, done) = (Arc::clone(&now), Arc::clone(&peak), done.clone());
            pool.spawn(move || {
                let n = now.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(n, Ordering::SeqCst);
                thread::sleep(Duration::from_millis(5));
                now.fetch_sub(1, Ordering::SeqCst);
                done.send(()).unwrap();
                nothing()
            });
        }
        for _ in 0..8 {
            finished.recv_timeout(Duration::from_secs(10)).unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(pool.stats().threads, 2);
    }

    #[test]
    fn idle_counts_threads_without_a_running_or_queued_job() {
        let pool = WorkerPool::new(2).unwrap();
        assert_eq!(pool.idle(), 2);
        let (started, wait_started) = mpsc::channel();
        let (release, hold) = mpsc::channel::<()>();
        pool.spawn(move || {
            started.send(()).unwrap();
            hold.recv().unwrap();
            nothing()
        });
        wait_started.recv_timeout(Duration::from_secs(10)).unwrap();
        assert_eq!(pool.idle(), 1, "one thread runs a job");
        let (done, finished) = mpsc::channel();
        pool.spawn(move || {
            done.send(()).unwrap();
            nothing()
        });
        finished.recv_timeout(Duration::from_secs(10)).unwrap();
        release.send(()).unwrap();
        for _ in 0..1000 {
            if pool.idle() == 2 {
                return;
            }
            thread::sleep(Duration::from_millis(5));
        }
        panic!("the threads never became idle again: {}", pool.idle());
    }

    #[test]
    fn zero_threads_is_refused() {
        assert_eq!(
            WorkerPool::new(0).err().map(|e| e.code()),
            Some("INVALID_INPUT")
        );
    }
}
