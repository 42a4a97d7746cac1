//! [`MemoryStore`]: the `Store` port in memory, for use-case tests that are not about the
//! DynamoDB wire (item mapping, paging, SDK errors: those stay with `nbfleet-aws`'s tests).
//!
//! It keeps DynamoDB's semantics, not just its signatures: writes are conditional exactly as
//! `DynamoStore` words them (no record for [`Expect::Absent`]; that state and version for
//! [`Expect::Version`]), a refused write is an [`Error::Conflict`] with the same message and
//! changes nothing, a put replaces the whole record, and history and `first_time` items are
//! ordered and keyed as their DynamoDB items are. [`crate::store_contract`] holds it, and any
//! other `Store`, to those semantics.
//!
//! Unlike DynamoDB, every read is strongly consistent (DynamoDB's indexes and scans are not),
//! and nothing expires: it reads no clock, and DynamoDB's TTL deletion is lazy too.

use async_trait::async_trait;
use jiff::Timestamp;
use nbfleet_core::ports::Store;
use nbfleet_core::{Error, Expect, Notebook, Result, State};
use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard};

/// The `Store` port over in-memory maps. Cheap to make: one per test.
#[derive(Debug, Default)]
pub struct MemoryStore {
    tables: Mutex<Tables>,
}

#[derive(Debug, Default)]
struct Tables {
    /// The records, by name (DynamoDB: `sk = "notebook"`).
    records: BTreeMap<String, Notebook>,
    /// History entries by notebook, then by sort key: `history#` and the RFC 3339 time, as
    /// DynamoDB keys them, so that they come back in its (string) order and the same time
    /// twice overwrites.
    history: BTreeMap<String, BTreeMap<String, serde_json::Value>>,
    /// `first_time` keys, with the time DynamoDB's TTL may delete them after.
    once: BTreeMap<String, Timestamp>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn tables(&self) -> MutexGuard<'_, Tables> {
        // No code here panics while holding the lock; a poisoned one still holds whole maps.
        self.tables
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// `DynamoStore`'s sort key for a history item.
fn history_key(at: Timestamp) -> String {
    format!("history#{at}")
}

/// The conflict `DynamoStore` answers when the condition of a put fails, word for word.
fn conflict(nb: &Notebook, expect: Expect) -> Error {
    Error::Conflict(match expect {
        Expect::Absent => format!("notebook {:?} already exists", nb.name),
        Expect::Version { state, version } => format!(
            "notebook {:?} changed while this request ran (expected {state} at version {version}); retry",
            nb.name
        ),
    })
}

#[async_trait]
impl Store for MemoryStore {
    async fn put(&self, nb: &Notebook, expect: Expect) -> Result<()> {
        let mut tables = self.tables();
        let current = tables.records.get(&nb.name);
        let holds = match expect {
            // attribute_not_exists(name)
            Expect::Absent => current.is_none(),
            // state = :state AND version = :version; false on a missing item.
            Expect::Version { state, version } => {
                current.is_some_and(|c| c.state == state && c.version == version)
            }
        };
        if !holds {
            return Err(conflict(nb, expect));
        }
        // PutItem replaces the whole item.
        tables.records.insert(nb.name.clone(), nb.clone());
        Ok(())
    }

    async fn get(&self, name: &str) -> Result<Option<Notebook>> {
        Ok(self.tables().records.get(name).cloned())
    }

    async fn by_instance(&self, instance_id: &str) -> Result<Option<Notebook>> {
        let mut found: Vec<Notebook> = self
            .tables()
            .records
            .values()
            .filter(|nb| nb.instance_id.as_deref() == Some(instance_id))
            .cloned()
            .collect();
        // As DynamoStore: the newest by updated_at if ever two.
        found.sort_by_key(|nb| nb.updated_at);
        Ok(found.pop())
    }

    async fn list_by_state(&self, state: State) -> Result<Vec<Notebook>> {
        // The by-state index's range key is the name: name order.
        Ok(self
            .tables()
            .records
            .values()
            .filter(|nb| nb.state == state)
            .cloned()
            .collect())
    }

    async fn list(&self) -> Result<Vec<Notebook>> {
        // Records only (no history or first_time items), sorted by name.
        Ok(self.tables().records.values().cloned().collect())
    }

    async fn append_history(&self, notebook: &str, at: Timestamp, entry: &serde_json::Value) -> Result<()> {
        // Unconditional, as in DynamoDB: the same notebook and time twice keeps the second.
        let mut entry = entry.clone();
        if let Some(obj) = entry.as_object_mut() {
            obj.insert("at".into(), serde_json::Value::String(at.to_string()));
        }
        self.tables()
            .history
            .entry(notebook.to_string())
            .or_default()
            .insert(history_key(at), entry);
        Ok(())
    }

    async fn history(&self, notebook: &str) -> Result<Vec<serde_json::Value>> {
        Ok(self
            .tables()
            .history
            .get(notebook)
            .map(|items| items.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn first_time(&self, key: &str, until: Timestamp) -> Result<bool> {
        // A key stays until TTL would delete it, which no test can rely on: kept for good.
        let mut tables = self.tables();
        if tables.once.contains_key(key) {
            return Ok(false);
        }
        tables.once.insert(key.to_string(), until);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store_contract::notebook;

    #[tokio::test]
    async fn history_comes_back_in_the_string_order_of_its_dynamodb_sort_keys() {
        // DynamoDB orders `history#<time>` as strings, and jiff writes fractional seconds only
        // when there are some, so 10.5 s sorts before 10 s ('.' < 'Z'). Kept the same here, so
        // that a test passing on this store does not fail on DynamoDB.
        let store = MemoryStore::new();
        let t10 = Timestamp::from_second(1_800_000_010).unwrap();
        let t10_5 = Timestamp::from_millisecond(1_800_000_010_500).unwrap();
        assert!(
            history_key(t10_5) < history_key(t10),
            "{} {}",
            history_key(t10_5),
            history_key(t10)
        );
        store
            .append_history("nb", t10, &serde_json::json!(10.0))
            .await
            .unwrap();
        store
            .append_history("nb", t10_5, &serde_json::json!(10.5))
            .await
            .unwrap();
        assert_eq!(
            store.history("nb").await.unwrap(),
            [serde_json::json!(10.5), serde_json::json!(10.0)]
        );
    }

    #[tokio::test]
    async fn a_stored_record_is_a_copy() {
        let store = MemoryStore::new();
        let mut nb = notebook("copied");
        store.put(&nb, Expect::Absent).await.unwrap();
        nb.owner = "mallory".into();
        assert_eq!(store.get("copied").await.unwrap().unwrap().owner, "alice");
    }
}
