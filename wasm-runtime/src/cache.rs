//! Compiled-bytecode cache keyed by the SHA-256 (hex) of the handler source: a bounded in-memory
//! LRU, plus an optional folder of `<sha256>.qbc` files bounded in total bytes (oldest evicted).
//!
//! Disk file layout (all integers little-endian):
//! `"WKQBC\x01\0\0"` (8) · guest hash (32, SHA-256 of guest.wasm) · SHA-256 of the bytecode (32) ·
//! bytecode length (u64) · bytecode. A file whose guest hash differs (the guest was rebuilt), whose
//! length or checksum does not match, is ignored and later overwritten or evicted.
//! Disk hits refresh the file's mtime, so eviction is least-recently-used.

use std::collections::HashMap;
use std::fs;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use lru::LruCache;
use sha2::{Digest, Sha256};

use crate::engine::{hex, lock};
use crate::error::{HostError, HostResult};

const MAGIC: &[u8; 8] = b"WKQBC\x01\0\0";
const HEADER_BYTES: usize = 8 + 32 + 32 + 8;
const EXT: &str = "qbc";

/// SHA-256 of `source` as lower-case hex: the cache key and `cacheKey` of `precompile`.
pub fn source_key(source: &[u8]) -> String {
    hex(&Sha256::digest(source))
}

/// Counters of a cache, as shown by `stats()`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CacheStats {
    /// Entries in the memory LRU.
    pub memory_entries: u64,
    /// Lookups answered from memory or disk.
    pub hits: u64,
    /// Lookups answered by neither.
    pub misses: u64,
    /// Bytes of `.qbc` files in the cache folder (as this process knows them).
    pub disk_bytes: u64,
    /// Number of `.qbc` files in the cache folder (as this process knows them).
    pub disk_entries: u64,
}

/// The two-level bytecode cache of one runtime (one guest).
pub struct BytecodeCache {
    memory: Option<Mutex<LruCache<String, Arc<[u8]>>>>,
    disk: Option<DiskCache>,
    hits: AtomicU64,
    misses: AtomicU64,
}

impl BytecodeCache {
    /// A cache keeping `memory_entries` entries in memory (0 = none) and, when `dir` is given,
    /// at most `max_disk_bytes` of files there. Creates `dir` if needed.
    pub fn new(
        memory_entries: usize,
        dir: Option<&Path>,
        max_disk_bytes: u64,
        guest_hash: [u8; 32],
    ) -> HostResult<Self> {
        let memory = NonZeroUsize::new(memory_entries).map(|n| Mutex::new(LruCache::new(n)));
        let disk = dir
            .map(|d| DiskCache::open(d, max_disk_bytes, guest_hash))
            .transpose()?;
        Ok(BytecodeCache {
            memory,
            disk,
            hits: AtomicU64::new(0),
            misses: AtomicU64::new(0),
        })
    }

    /// Looks `key` up in memory, then on disk (a disk hit is promoted into memory). Counts the
    /// lookup as a hit or a miss.
    pub fn get(&self, key: &str) -> Option<Arc<[u8]>> {
        let found = self
            .memory
            .as_ref()
            .and_then(|m| lock(m).get(key).cloned())
            .or_else(|| {
                let bytes: Arc<[u8]> = self.disk.as_ref()?.read(key)?.into();
                self.put_memory(key, &bytes);
                Some(bytes)
            });
        let counter = if found.is_some() {
            &self.hits
        } else {
            &self.misses
        };
        counter.fetch_add(1, Ordering::Relaxed);
        found
    }

    /// Stores `bytecode` under `key` in memory and on disk. Disk write failures are ignored (the
    /// cache is an optimisation; the caller already has its bytecode).
    pub fn put(&self, key: &str, bytecode: &Arc<[u8]>) {
        self.put_memory(key, bytecode);
        if let Some(d) = &self.disk {
            d.write(key, bytecode);
        }
    }

    fn put_memory(&self, key: &str, bytecode: &Arc<[u8]>) {
        if let Some(m) = &self.memory {
            lock(m).put(key.to_owned(), Arc::clone(bytecode));
        }
    }

    /// Current counters.
    pub fn stats(&self) -> CacheStats {
        let (disk_bytes, disk_entries) =
            self.disk.as_ref().map(DiskCache::totals).unwrap_or((0, 0));
        CacheStats {
            memory_entries: self
                .memory
                .as_ref()
                .map(|m| lock(m).len() as u64)
                .unwrap_or(0),
            hits: self.hits.load(Ordering::Relaxed),
            misses: self.misses.load(Ordering::Relaxed),
            disk_bytes,
            disk_entries,
        }
    }
}

/// The folder part of the cache. Keeps an index (file → size, mtime) built by scanning the
/// folder at open time; other processes sharing the folder may make it drift, which only
/// affects when eviction starts.
struct DiskCache {
    dir: PathBuf,
    max_bytes: u64,
    guest_hash: [u8; 32],
    index: Mutex<DiskIndex>,
}

#[derive(Default)]
struct DiskIndex {
    files: HashMap<String, (u64, SystemTime)>,
    total: u64,
    /// Last use time handed out; uses within one process get strictly increasing times so that
    /// eviction order is exact even when the clock does not move between two writes.
    last: Option<SystemTime>,
}

impl DiskIndex {
    fn next_stamp(&mut self) -> SystemTime {
        let now = SystemTime::now();
        let t = match self.last {
            Some(last) if now <= last => last + std::time::Duration::from_nanos(1),
            _ => now,
        };
        self.last = Some(t);
        t
    }
}

impl DiskCache {
    fn open(dir: &Path, max_bytes: u64, guest_hash: [u8; 32]) -> HostResult<Self> {
        fs::create_dir_all(dir).map_err(|e| {
            HostError::invalid(format!("cannot create cache folder {}: {e}", dir.display()))
        })?;
        let mut index = DiskIndex::default();
        let entries = fs::read_dir(dir).map_err(|e| {
            HostError::invalid(format!("cannot read cache folder {}: {e}", dir.display()))
        })?;
        for entry in entries.flatten() {
            let path = entry.path();
            let (Some(key), Ok(meta)) = (key_of(&path), entry.metadata()) else {
                continue;
            };
            if meta.is_file() {
                index.total += meta.len();
                index.files.insert(
                    key,
                    (
                        meta.len(),
                        meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    ),
                );
            }
        }
        let cache = DiskCache {
            dir: dir.to_owned(),
            max_bytes,
            guest_hash,
            index: Mutex::new(index),
        };
        cache.evict();
        Ok(cache)
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir.join(format!("{key}.{EXT}"))
    }

    /// Reads and validates the file of `key`; refreshes its mtime on success.
    fn read(&self, key: &str) -> Option<Vec<u8>> {
        let path = self.path(key);
        let bytes = fs::read(&path).ok()?;
        let body = self.validate(&bytes)?.to_vec();
        let now = {
            let mut idx = lock(&self.index);
            let now = idx.next_stamp();
            if let Some(e) = idx.files.get_mut(key) {
                e.1 = now;
            }
            now
        };
        if let Ok(f) = fs::File::options().write(true).open(&path) {
            let _ = f.set_modified(now);
        }
        Some(body)
    }

    /// The bytecode inside `file` if its header matches this guest and its checksum holds.
    fn validate<'a>(&self, file: &'a [u8]) -> Option<&'a [u8]> {
        if file.len() < HEADER_BYTES || &file[..8] != MAGIC || file[8..40] != self.guest_hash {
            return None;
        }
        let len = u64::from_le_bytes(file[72..80].try_into().ok()?);
        let body = &file[HEADER_BYTES..];
        if body.len() as u64 != len || Sha256::digest(body).as_slice() != &file[40..72] {
            return None;
        }
        Some(body)
    }

    /// Writes the file of `key` atomically, then evicts the oldest files past the bound.
    fn write(&self, key: &str, bytecode: &[u8]) {
        let size = (HEADER_BYTES + bytecode.len()) as u64;
        if size > self.max_bytes {
            return;
        }
        let mut file = Vec::with_capacity(size as usize);
        file.extend_from_slice(MAGIC);
        file.extend_from_slice(&self.guest_hash);
        file.extend_from_slice(&Sha256::digest(bytecode));
        file.extend_from_slice(&(bytecode.len() as u64).to_le_bytes());
        file.extend_from_slice(bytecode);
        let path = self.path(key);
        let tmp = self.dir.join(format!(".{key}.{}.tmp", std::process::id()));
        if fs::write(&tmp, &file).is_err() || fs::rename(&tmp, &path).is_err() {
            let _ = fs::remove_file(&tmp);
            return;
        }
        {
            let mut idx = lock(&self.index);
            let now = idx.next_stamp();
            if let Some((old, _)) = idx.files.insert(key.to_owned(), (size, now)) {
                idx.total -= old;
            }
            idx.total += size;
        }
        self.evict();
    }

    /// Deletes least-recently-used files until the total fits `max_bytes`.
    fn evict(&self) {
        let mut idx = lock(&self.index);
        if idx.total <= self.max_bytes {
            return;
        }
        let mut by_age: Vec<(SystemTime, String, u64)> = idx
            .files
            .iter()
            .map(|(k, (size, t))| (*t, k.clone(), *size))
            .collect();
        by_age.sort();
        for (_, key, size) in by_age {
            if idx.total <= self.max_bytes {
                break;
            }
            let _ = fs::remove_file(self.path(&key));
            idx.files.remove(&key);
            idx.total -= size;
        }
    }

    fn totals(&self) -> (u64, u64) {
        let idx = lock(&self.index);
        (idx.total, idx.files.len() as u64)
    }
}

/// The key of a cache file path (`<64 hex>.qbc`), if it is one.
fn key_of(path: &Path) -> Option<String> {
    if path.extension()? != EXT {
        return None;
    }
    let stem = path.file_stem()?.to_str()?;
    (stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit())).then(|| stem.to_owned())
}
