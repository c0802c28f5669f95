//! Upgrading files of formats 1 (an entry per row), 2 (a row per node and
//! slice), 3 (a row per slice, no checksums), 4 (no census) and 5 (slices
//! of 12 leading bits) to format 6 (a row per slice of 16 leading bits,
//! each write once, every blob sealed with its checksum, the census of
//! members in the settings).

use super::column;
use super::open::classify;
use super::slice::{CREATE_SLICES, SliceBatch, slice_of};
use super::{Access, FORMAT_VERSION, State, StateError, codec};
use crate::chord::Id;
use crate::chord::store::{Key, Versioned};
use futures_util::TryStreamExt;

/// Leading position bits of a slice before format 6.
const FORMAT_5_SLICE_BITS: u32 = 12;

impl State {
    /// Rewrites a file of an older format in this one, in its own
    /// transaction for a reader (which then reads on as usual) and inside the
    /// command's for a writer (so a failed command leaves the file as it
    /// was). Format 1 held an entry per row; format 2 a row per node and
    /// slice, with each node's copies written out; format 3 a row per slice
    /// like format 4, without checksums.
    pub(super) async fn upgrade(&mut self, access: Access) -> Result<(), StateError> {
        if access == Access::Read {
            self.run(&["ROLLBACK", "BEGIN IMMEDIATE"]).await?;
        }
        // Another process may have upgraded it while we waited for the lock.
        let version: u32 = self.meta("version").await?.parse().unwrap_or(0);
        if version < FORMAT_VERSION {
            if version >= 4 {
                // Sealed settings are checked before they are resealed.
                self.verify_meta().await?;
            }
            tracing::info!(path = %self.path.display(), "upgrading state format {version} to {FORMAT_VERSION}");
            if version < 3 {
                self.slices_from_older_rows(version).await?;
            } else {
                if version < 4 {
                    self.reseal("slices", "slice", "data").await?;
                }
                self.reslice().await?;
            }
            if version < 4 {
                self.reseal_nodes().await?;
            }
            self.recount_census().await?;
            self.run(&[super::users::CREATE_USERS, super::log::CREATE_LOG])
                .await?;
            self.set_meta("version", &FORMAT_VERSION.to_string())
                .await?;
        }
        if access == Access::Read {
            self.run(&["COMMIT", "BEGIN DEFERRED"]).await?;
        }
        Ok(())
    }

    /// Formats 1 and 2: every copy read from the old table, written as
    /// slices (sealed with checksums), the old table dropped.
    async fn slices_from_older_rows(&mut self, version: u32) -> Result<(), StateError> {
        let bits = self.params().await?.bits;
        // Every copy, with its slice and holder.
        let mut copies: Vec<(i64, Key, Versioned, i64)> = Vec::new();
        let old_table = if version == 1 { "entries" } else { "chunks" };
        {
            let query = if version == 1 {
                "SELECT nid, key_pos, key, version, value FROM entries"
            } else {
                "SELECT nid, data FROM chunks"
            };
            let mut rows = sqlx::query(query).fetch(&mut self.conn);
            let mut bad = None;
            while let Some(row) = rows.try_next().await.map_err(|e| classify(&self.path, e))? {
                let nid: i64 = match column(&row, 0) {
                    Ok(n) => n,
                    Err(e) => {
                        bad = Some(format!("table {old_table}: {e}"));
                        break;
                    }
                };
                if version == 1 {
                    match format_one_entry(&row) {
                        Ok((key, v)) => copies.push((slice_of(bits, key.id), key, v, nid)),
                        Err(what) => {
                            bad = Some(what);
                            break;
                        }
                    }
                } else {
                    let data: &[u8] = match column(&row, 1) {
                        Ok(d) => d,
                        Err(e) => {
                            bad = Some(format!("table chunks, node row {nid}: {e}"));
                            break;
                        }
                    };
                    if let Err(e) = codec::for_each_entry(data, |key, v| {
                        copies.push((slice_of(bits, key.id), key, v, nid))
                    }) {
                        bad = Some(format!("stored entries of node row {nid}: {e}"));
                        break;
                    }
                }
            }
            drop(rows);
            if let Some(what) = bad {
                return Err(self.damaged(what));
            }
        }
        self.run(&[CREATE_SLICES]).await?;
        self.write_copies(copies).await?;
        self.run(&[&format!("DROP TABLE {old_table}")]).await?;
        Ok(())
    }

    /// Formats 3 to 5: slice rows of [`FORMAT_5_SLICE_BITS`] leading bits
    /// split into rows of [`super::SLICE_BITS`]. Every copy is read, the
    /// table made again and the copies written into it. Rings no wider
    /// than the old slices already have a row per position.
    async fn reslice(&mut self) -> Result<(), StateError> {
        let bits = self.params().await?.bits;
        if bits.get() <= FORMAT_5_SLICE_BITS {
            return Ok(());
        }
        let mut copies: Vec<(i64, Key, Versioned, i64)> = Vec::new();
        self.each_copy_of(
            sqlx::query("SELECT slice, data FROM slices"),
            |key, v, nid| {
                copies.push((slice_of(bits, key.id), key.clone(), v.clone(), nid));
                Some(())
            },
        )
        .await?;
        self.run(&["DROP TABLE slices", CREATE_SLICES]).await?;
        self.write_copies(copies).await
    }

    /// Writes `copies` (slice, key, copy, holder row id) into the empty
    /// slices table.
    async fn write_copies(
        &mut self,
        mut copies: Vec<(i64, Key, Versioned, i64)>,
    ) -> Result<(), StateError> {
        copies.sort_unstable_by_key(|c| c.0);
        let mut batch = SliceBatch::new();
        for group in copies.chunk_by(|a, b| a.0 == b.0) {
            if batch.is_full() {
                self.flush_slices(&mut batch, false).await?;
            }
            batch.start(group[0].0);
            let mut refs: Vec<codec::SliceCopy> = group
                .iter()
                .map(|c| (c.1.id, &*c.1.text, &c.2, c.3))
                .collect();
            codec::put_slice(&mut batch.raw, &mut refs);
        }
        self.flush_slices(&mut batch, false).await?;
        Ok(())
    }

    /// Seals every node's routing blob with its checksum.
    async fn reseal_nodes(&mut self) -> Result<(), StateError> {
        let rows: Vec<(i64, Vec<u8>, Vec<u8>)> =
            sqlx::query_as("SELECT nid, addr, routing FROM nodes")
                .fetch_all(&mut self.conn)
                .await
                .map_err(self.sql())?;
        for (nid, addr, routing) in rows {
            let id = codec::decode_node_id(&addr)
                .map_err(|e| self.damaged(format!("table nodes, row {nid}: address: {e}")))?;
            sqlx::query("UPDATE nodes SET routing = ? WHERE nid = ?")
                .bind(codec::resealed_node(id, &routing))
                .bind(nid)
                .execute(&mut self.conn)
                .await
                .map_err(self.sql())?;
        }
        Ok(())
    }

    /// Seals every blob in `table.column` (rows keyed by `key`) with its
    /// checksum: files before format 4 had none.
    async fn reseal(
        &mut self,
        table: &str,
        key: &str,
        column_name: &str,
    ) -> Result<(), StateError> {
        let rows: Vec<(i64, Vec<u8>)> =
            sqlx::query_as(&format!("SELECT {key}, {column_name} FROM {table}"))
                .fetch_all(&mut self.conn)
                .await
                .map_err(self.sql())?;
        let update = format!("UPDATE {table} SET {column_name} = ? WHERE {key} = ?");
        for (k, blob) in rows {
            sqlx::query(&update)
                .bind(codec::resealed(&blob))
                .bind(k)
                .execute(&mut self.conn)
                .await
                .map_err(self.sql())?;
        }
        Ok(())
    }
}

/// A format-1 entry row (nid, key_pos, key, version, value) as a key and
/// its versioned value, or what is damaged about it.
fn format_one_entry(row: &sqlx::sqlite::SqliteRow) -> Result<(Key, Versioned), String> {
    let pos: &[u8] = column(row, 1).map_err(|e| format!("table entries: {e}"))?;
    let text: &str = column(row, 2).map_err(|e| format!("table entries: {e}"))?;
    let version: i64 = column(row, 3).map_err(|e| format!("table entries: {e}"))?;
    let value: Option<&str> = column(row, 4).map_err(|e| format!("table entries: {e}"))?;
    let pos = <[u8; 20]>::try_from(pos)
        .map(Id::from_bytes)
        .map_err(|_| format!("entry {text:?} has a malformed position"))?;
    let value = value
        .map(serde_json::from_str)
        .transpose()
        .map_err(|e| format!("entry {text:?} holds invalid JSON: {e}"))?;
    Ok((
        Key::new(pos, text),
        Versioned {
            version: version as u64,
            value,
        },
    ))
}
