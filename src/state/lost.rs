//! Keys lost for good: a crash forced past the safety check (`fail --force`)
//! can destroy a key's only copy. The state file remembers which, so that
//! `check` keeps reporting them until the key is written again or deleted.

use super::slice::slice_of;
use super::{State, StateError};
use crate::chord::Bits;
use crate::chord::store::Key;
use serde::{Deserialize, Serialize};

/// A key whose every copy is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostKey {
    /// The key.
    pub key: String,
    /// The node whose crash destroyed its last copy.
    pub node: String,
}

/// The setting that holds the list.
const LOST: &str = "lost";

impl State {
    /// The keys recorded as lost, oldest first.
    pub async fn lost(&mut self) -> Result<Vec<LostKey>, StateError> {
        let v: Option<String> = sqlx::query_scalar("SELECT value FROM meta WHERE key = ?")
            .bind(LOST)
            .fetch_optional(&mut self.conn)
            .await
            .map_err(self.sql())?;
        match v {
            None => Ok(Vec::new()),
            Some(text) => serde_json::from_str(&text)
                .map_err(|e| self.damaged(format!("table meta, row {LOST:?}: {e}"))),
        }
    }

    /// Records `keys` as lost with the crash of `node` (a key already
    /// listed is listed once, with its latest loss).
    pub async fn record_lost(
        &mut self,
        node: &str,
        keys: &[impl AsRef<str>],
    ) -> Result<(), StateError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut list = self.lost().await?;
        list.retain(|l| !keys.iter().any(|k| k.as_ref() == l.key));
        list.extend(keys.iter().map(|k| LostKey {
            key: k.as_ref().to_owned(),
            node: node.to_owned(),
        }));
        self.set_lost(&list).await
    }

    /// Forgets `key` as lost (it was written again, or deleted).
    pub async fn forget_lost(&mut self, key: &str) -> Result<(), StateError> {
        self.forget_lost_keys(&[key]).await
    }

    /// Forgets every key of `keys` as lost (written again, or deleted):
    /// one read and at most one write of the list, however many keys.
    pub async fn forget_lost_keys(&mut self, keys: &[impl AsRef<str>]) -> Result<(), StateError> {
        if keys.is_empty() {
            return Ok(());
        }
        let mut list = self.lost().await?;
        let before = list.len();
        let gone: std::collections::HashSet<&str> = keys.iter().map(AsRef::as_ref).collect();
        list.retain(|l| !gone.contains(l.key.as_str()));
        if list.len() == before {
            return Ok(());
        }
        self.set_lost(&list).await
    }

    async fn set_lost(&mut self, list: &[LostKey]) -> Result<(), StateError> {
        let text = serde_json::to_string(list).expect("lost keys serialize");
        self.set_meta(LOST, &text).await
    }

    /// Forgets, as lost, the keys the file now holds a live copy of (a
    /// load wrote them again), in the transaction's view: one slice read
    /// per lost key.
    pub async fn forget_lost_held_again(&mut self, bits: Bits) -> Result<(), StateError> {
        let mut held = Vec::new();
        for lost in self.lost().await? {
            let key = Key::new(bits.hash(&lost.key), lost.key.as_str());
            let mut found = false;
            self.each_copy_in(slice_of(bits, key.id), |k, v, _| {
                found |= *k == key && v.value.is_some()
            })
            .await?;
            if found {
                held.push(lost.key);
            }
        }
        self.forget_lost_keys(&held).await
    }
}
