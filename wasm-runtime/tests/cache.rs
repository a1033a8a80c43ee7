//! The bytecode cache: memory LRU bound, disk persistence, disk bound, stale guest, corruption.

use std::fs;
use std::path::Path;
use std::sync::Arc;

use wasm_runtime::cache::{BytecodeCache, source_key};

const GUEST_A: [u8; 32] = [1; 32];
const GUEST_B: [u8; 32] = [2; 32];
/// Bytes of the header of a `.qbc` file.
const HEADER: u64 = 80;

fn bytes(s: &str) -> Arc<[u8]> {
    Arc::from(s.as_bytes())
}

fn qbc_files(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".qbc"))
        .collect();
    v.sort();
    v
}

#[test]
fn source_key_is_sha256_hex() {
    assert_eq!(
        source_key(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}

#[test]
fn memory_lru_keeps_the_most_recent_entries() {
    let c = BytecodeCache::new(2, None, 0, GUEST_A).unwrap();
    c.put("a", &bytes("A"));
    c.put("b", &bytes("B"));
    assert!(c.get("a").is_some()); // a is now the most recent
    c.put("c", &bytes("C")); // evicts b
    assert!(c.get("b").is_none());
    assert_eq!(c.get("a").as_deref(), Some(&b"A"[..]));
    assert_eq!(c.get("c").as_deref(), Some(&b"C"[..]));
    let st = c.stats();
    assert_eq!((st.memory_entries, st.hits, st.misses), (2, 3, 1));
}

#[test]
fn zero_memory_entries_disables_the_memory_level() {
    let c = BytecodeCache::new(0, None, 0, GUEST_A).unwrap();
    c.put("a", &bytes("A"));
    assert!(c.get("a").is_none());
    assert_eq!(c.stats().memory_entries, 0);
}

#[test]
fn disk_entries_survive_a_restart_for_the_same_guest_only() {
    let dir = tempfile::tempdir().unwrap();
    let key = source_key(b"x");
    {
        let c = BytecodeCache::new(4, Some(dir.path()), 1 << 20, GUEST_A).unwrap();
        c.put(&key, &bytes("bytecode"));
        assert_eq!(c.stats().disk_entries, 1);
        assert_eq!(c.stats().disk_bytes, HEADER + 8);
    }
    assert_eq!(qbc_files(dir.path()), vec![format!("{key}.qbc")]);

    let same = BytecodeCache::new(4, Some(dir.path()), 1 << 20, GUEST_A).unwrap();
    assert_eq!(
        same.stats().disk_bytes,
        HEADER + 8,
        "the index is rebuilt from the folder"
    );
    assert_eq!(same.get(&key).as_deref(), Some(&b"bytecode"[..]));
    assert_eq!(
        same.stats().memory_entries,
        1,
        "a disk hit is promoted to memory"
    );

    let rebuilt_guest = BytecodeCache::new(4, Some(dir.path()), 1 << 20, GUEST_B).unwrap();
    assert!(
        rebuilt_guest.get(&key).is_none(),
        "bytecode of another guest build is never used"
    );
    rebuilt_guest.put(&key, &bytes("new"));
    let again = BytecodeCache::new(4, Some(dir.path()), 1 << 20, GUEST_B).unwrap();
    assert_eq!(again.get(&key).as_deref(), Some(&b"new"[..]));
}

#[test]
fn damaged_files_are_misses() {
    let dir = tempfile::tempdir().unwrap();
    let key = source_key(b"y");
    BytecodeCache::new(0, Some(dir.path()), 1 << 20, GUEST_A)
        .unwrap()
        .put(&key, &bytes("0123456789"));
    let path = dir.path().join(format!("{key}.qbc"));
    let mut file = fs::read(&path).unwrap();
    let last = file.len() - 1;
    file[last] ^= 0xff; // flip a byte of the body: checksum mismatch
    fs::write(&path, &file).unwrap();
    let c = BytecodeCache::new(0, Some(dir.path()), 1 << 20, GUEST_A).unwrap();
    assert!(c.get(&key).is_none());
    fs::write(&path, &file[..file.len() - 3]).unwrap(); // truncated
    assert!(c.get(&key).is_none());
    assert_eq!(c.stats().misses, 2);
}

#[test]
fn disk_is_bounded_and_evicts_least_recently_used() {
    let dir = tempfile::tempdir().unwrap();
    let entry = HEADER + 100;
    let c = BytecodeCache::new(0, Some(dir.path()), 3 * entry, GUEST_A).unwrap();
    let keys: Vec<String> = (0..5)
        .map(|i| source_key(format!("src{i}").as_bytes()))
        .collect();
    let body: Arc<[u8]> = Arc::from(vec![7u8; 100]);
    c.put(&keys[0], &body);
    c.put(&keys[1], &body);
    c.put(&keys[2], &body);
    assert!(c.get(&keys[0]).is_some()); // refresh 0: 1 is now the oldest
    c.put(&keys[3], &body);
    c.put(&keys[4], &body);
    let st = c.stats();
    assert_eq!((st.disk_entries, st.disk_bytes), (3, 3 * entry));
    let mut expected = vec![
        format!("{}.qbc", keys[0]),
        format!("{}.qbc", keys[3]),
        format!("{}.qbc", keys[4]),
    ];
    expected.sort();
    assert_eq!(qbc_files(dir.path()), expected);
}

#[test]
fn entries_larger_than_the_bound_are_not_written_and_other_files_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("notes.txt"), "keep me").unwrap();
    let c = BytecodeCache::new(0, Some(dir.path()), 50, GUEST_A).unwrap();
    c.put(
        &source_key(b"z"),
        &bytes("this is far too large for a 50 byte cache"),
    );
    assert_eq!(c.stats().disk_entries, 0);
    assert!(qbc_files(dir.path()).is_empty());
    assert!(dir.path().join("notes.txt").exists());
}

#[test]
fn an_oversized_folder_is_trimmed_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let c = BytecodeCache::new(0, Some(dir.path()), 1 << 20, GUEST_A).unwrap();
    for i in 0..4 {
        c.put(
            &source_key(format!("s{i}").as_bytes()),
            &Arc::from(vec![0u8; 100]),
        );
    }
    drop(c);
    let small = BytecodeCache::new(0, Some(dir.path()), 2 * (HEADER + 100), GUEST_A).unwrap();
    assert_eq!(small.stats().disk_entries, 2);
    assert_eq!(qbc_files(dir.path()).len(), 2);
}
