//! A panel's committed state as the host holds it: key → JSON text, shared (`Arc`) so that a
//! segment reads a snapshot taken at its start while commits go on (copy-on-write: a commit
//! copies the table of pointers only while a snapshot of it is still held).
//!
//! The guest reads it lazily through the `wk` imports of host.rs (ABI.md "State"): one key's JSON
//! at a time, or the key list; nothing of the state travels in the execution context.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::de::IgnoredAny;

use crate::engine::lock;
use crate::error::{HostError, HostResult};

/// One committed key: its JSON text and its insertion rank (key order follows first insertion,
/// as in a JS object).
#[derive(Debug, Clone)]
struct Entry {
    rank: u64,
    json: Arc<str>,
}

/// An immutable version of a panel's state.
#[derive(Debug, Clone, Default)]
pub struct StateMap {
    entries: HashMap<Arc<str>, Entry>,
    next_rank: u64,
    /// Sum of key and value lengths, bytes (UTF-8).
    bytes: usize,
}

impl StateMap {
    /// The JSON text of `key`, if committed.
    pub fn get(&self, key: &str) -> Option<&Arc<str>> {
        self.entries.get(key).map(|e| &e.json)
    }

    /// Keys in insertion order (each JS engine then puts integer-like keys first on its own).
    pub fn keys(&self) -> Vec<&Arc<str>> {
        let mut keyed: Vec<(&Arc<str>, u64)> =
            self.entries.iter().map(|(k, e)| (k, e.rank)).collect();
        keyed.sort_unstable_by_key(|&(_, rank)| rank);
        keyed.into_iter().map(|(k, _)| k).collect()
    }

    /// The key list as a JSON array of strings.
    pub fn keys_json(&self) -> String {
        let keys: Vec<&str> = self.keys().into_iter().map(|k| &**k).collect();
        serde_json::to_string(&keys).unwrap_or_else(|_| "[]".to_owned())
    }

    /// The whole state as one JSON object text, keys in insertion order.
    pub fn to_json(&self) -> String {
        let mut out = String::with_capacity(self.bytes + 4 * self.entries.len() + 2);
        out.push('{');
        for (i, k) in self.keys().into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(&**k).unwrap_or_default());
            out.push(':');
            out.push_str(&self.entries[k].json);
        }
        out.push('}');
        out
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is committed.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Sum of key and value lengths, bytes.
    pub fn byte_size(&self) -> usize {
        self.bytes
    }

    fn set(&mut self, key: &str, json: Arc<str>) {
        if let Some(e) = self.entries.get_mut(key) {
            self.bytes = self.bytes - e.json.len() + json.len();
            e.json = json;
            return;
        }
        self.bytes += key.len() + json.len();
        let rank = self.next_rank;
        self.next_rank += 1;
        self.entries.insert(key.into(), Entry { rank, json });
    }

    fn delete(&mut self, key: &str) {
        if let Some(e) = self.entries.remove(key) {
            self.bytes -= key.len() + e.json.len();
        }
    }
}

/// One mutation of a batch: `Some(json)` sets the key to that JSON text, `None` deletes it.
pub type Mutation = (String, Option<String>);

/// A panel's committed state, shared between its owner (who commits) and running segments (who
/// read snapshots). Cloning shares the same state.
#[derive(Debug, Clone, Default)]
pub struct SharedState(Arc<Mutex<Arc<StateMap>>>);

impl SharedState {
    /// The current version; later commits do not change it.
    pub fn snapshot(&self) -> Arc<StateMap> {
        Arc::clone(&lock(&self.0))
    }

    /// Drops every key (snapshots already taken keep theirs).
    pub fn clear(&self) {
        *lock(&self.0) = Arc::default();
    }

    /// Applies a batch atomically, in order. Every value must be one JSON text; otherwise
    /// INVALID_INPUT and nothing is applied.
    pub fn apply(&self, batch: Vec<Mutation>) -> HostResult<()> {
        let mut checked: Vec<(String, Option<Arc<str>>)> = Vec::with_capacity(batch.len());
        for (key, value) in batch {
            let json = match value {
                Some(text) => {
                    serde_json::from_str::<IgnoredAny>(&text).map_err(|e| {
                        HostError::invalid(format!(
                            "the value of state key {key:?} is not one JSON text: {e}"
                        ))
                    })?;
                    Some(Arc::<str>::from(text))
                }
                None => None,
            };
            checked.push((key, json));
        }
        let mut current = lock(&self.0);
        let map = Arc::make_mut(&mut current);
        for (key, json) in checked {
            match json {
                Some(j) => map.set(&key, j),
                None => map.delete(&key),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(k: &str, v: &str) -> Mutation {
        (k.to_owned(), Some(v.to_owned()))
    }

    #[test]
    fn a_snapshot_keeps_its_version_while_commits_go_on() {
        let s = SharedState::default();
        s.apply(vec![set("a", "1"), set("b", "[2]")]).unwrap();
        let before = s.snapshot();
        s.apply(vec![
            set("a", "3"),
            ("b".to_owned(), None),
            set("c", "\"x\""),
        ])
        .unwrap();
        assert_eq!(before.get("a").map(|j| &**j), Some("1"));
        assert_eq!(before.to_json(), r#"{"a":1,"b":[2]}"#);
        let now = s.snapshot();
        assert_eq!(now.to_json(), r#"{"a":3,"c":"x"}"#);
        assert_eq!((now.len(), now.byte_size()), (2, 1 + 1 + 1 + 3));
    }

    #[test]
    fn keys_keep_insertion_order_and_a_deleted_key_comes_back_last() {
        let s = SharedState::default();
        s.apply(vec![
            set("z", "1"),
            set("a", "1"),
            set("m", "1"),
            set("z", "2"),
        ])
        .unwrap();
        assert_eq!(s.snapshot().keys_json(), r#"["z","a","m"]"#);
        s.apply(vec![("z".to_owned(), None), set("z", "3")])
            .unwrap();
        assert_eq!(s.snapshot().keys_json(), r#"["a","m","z"]"#);
    }

    #[test]
    fn a_batch_with_a_bad_value_changes_nothing() {
        let s = SharedState::default();
        s.apply(vec![set("a", "1")]).unwrap();
        let err = s.apply(vec![set("a", "2"), set("b", "{nope")]).unwrap_err();
        assert_eq!(err.code(), "INVALID_INPUT");
        assert_eq!(s.snapshot().to_json(), r#"{"a":1}"#);
    }
}
