//! Where a database reader puts its rows: one batch for the whole result,
//! or, to load a table larger than memory, batches of about a part's size
//! handed on as they fill ([`Sink::parts`]), the reader running ahead of
//! the load by at most one part.

use super::{Batch, Record, SourceError};
use serde_json::Value;
use tokio::sync::mpsc;

/// A part read from a stream of rows, and whether it is the last.
pub type Streamed = Result<(Batch, bool), SourceError>;

/// Rows read so far, and where full parts go.
pub struct Sink {
    /// The rows not yet handed on.
    pub(crate) batch: Batch,
    /// About how many bytes of text `batch`'s records hold.
    bytes: usize,
    /// Records of `batch` already counted in `bytes`.
    counted: usize,
    /// Bytes per part and where parts go; None: one batch.
    parts: Option<(usize, mpsc::Sender<Streamed>)>,
    /// True once a part has been handed on.
    sent: bool,
}

impl Sink {
    /// Keeps every row in one batch.
    pub fn whole() -> Sink {
        Sink {
            batch: Batch::default(),
            bytes: 0,
            counted: 0,
            parts: None,
            sent: false,
        }
    }

    /// Hands the rows on to `to` in parts of about `part_bytes` bytes of
    /// text (as the values would be written in JSON).
    pub fn parts(part_bytes: usize, to: mpsc::Sender<Streamed>) -> Sink {
        Sink {
            parts: Some((part_bytes.max(1), to)),
            ..Sink::whole()
        }
    }

    /// True once a part has been handed on: the rows cannot be read again
    /// from the start.
    pub fn sent(&self) -> bool {
        self.sent
    }

    /// Drops the rows not yet handed on (a read that starts over).
    pub fn clear(&mut self) {
        self.batch = Batch::default();
        self.bytes = 0;
        self.counted = 0;
    }

    /// Called after each row: hands the batch on once it holds a part.
    /// Fails when nobody takes parts any more (the load stopped).
    pub async fn row_done(&mut self) -> Result<(), SourceError> {
        let Some((limit, to)) = &self.parts else {
            return Ok(());
        };
        for r in &self.batch.records[self.counted..] {
            self.bytes += record_bytes(r);
        }
        self.counted = self.batch.records.len();
        if self.bytes < *limit {
            return Ok(());
        }
        let full = std::mem::take(&mut self.batch);
        to.send(Ok((full, false)))
            .await
            .map_err(|_| SourceError::Sql("the load stopped reading".into()))?;
        self.sent = true;
        self.bytes = 0;
        self.counted = 0;
        Ok(())
    }

    /// The rows read, when the sink keeps one batch; with parts, hands the
    /// rest on as the last part and returns an empty batch.
    pub async fn finish(mut self) -> Batch {
        match self.parts.take() {
            None => self.batch,
            Some((_, to)) => {
                // Nobody receiving: the load stopped, nothing to do.
                let _ = to.send(Ok((self.batch, true))).await;
                Batch::default()
            }
        }
    }
}

/// About how many bytes of text a record holds.
fn record_bytes(r: &Record) -> usize {
    r.key.len() + value_bytes(&r.value)
}

fn value_bytes(v: &Value) -> usize {
    match v {
        Value::Null | Value::Bool(_) => 5,
        Value::Number(_) => 8,
        Value::String(s) => s.len() + 2,
        Value::Array(a) => 2 + a.iter().map(|x| value_bytes(x) + 1).sum::<usize>(),
        Value::Object(o) => {
            2 + o
                .iter()
                .map(|(k, x)| k.len() + 4 + value_bytes(x))
                .sum::<usize>()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn record(i: usize) -> Record {
        Record {
            key: format!("k{i}").into(),
            value: json!({"name": "x".repeat(90)}),
            row: i,
        }
    }

    #[tokio::test]
    async fn rows_go_on_in_parts_and_the_rest_as_the_last() {
        let (to, mut from) = mpsc::channel(1);
        let reader = tokio::spawn(async move {
            let mut sink = Sink::parts(1000, to);
            for i in 1..=25 {
                sink.batch.records.push(record(i));
                sink.row_done().await.expect("taken");
            }
            sink.finish().await
        });
        let mut got = Vec::new();
        while let Some(part) = from.recv().await {
            let (batch, last) = part.expect("no error");
            got.push((batch.records.len(), last));
        }
        assert!(reader.await.expect("ran").records.is_empty());
        // About 108 bytes a record: a part is full at the 10th.
        assert_eq!(got, vec![(10, false), (10, false), (5, true)]);
    }

    #[tokio::test]
    async fn a_reader_stops_when_nobody_takes_its_parts() {
        let (to, from) = mpsc::channel(1);
        drop(from);
        let mut sink = Sink::parts(10, to);
        sink.batch.records.push(record(1));
        assert!(sink.row_done().await.is_err());
    }

    #[tokio::test]
    async fn a_whole_sink_keeps_everything() {
        let mut sink = Sink::whole();
        for i in 1..=100 {
            sink.batch.records.push(record(i));
            sink.row_done().await.expect("kept");
        }
        assert_eq!(sink.finish().await.records.len(), 100);
    }
}
