//! Where a database reader puts its rows: one batch for the whole result,
//! or, to load a table larger than memory, batches of about a part's size
//! handed on as they fill ([`Sink::parts`]), the reader running ahead of
//! the load by at most one part.

use super::{BadRow, Batch, Columns, Plan, Record, SourceError, assemble};
use serde_json::Value;
use tokio::sync::mpsc;

/// A part read from a stream of rows, and whether it is the last.
pub type Streamed = Result<(Batch, bool), SourceError>;

/// Rows read so far, and where full parts go.
pub struct Sink<'p> {
    /// The rows not yet handed on.
    pub(crate) batch: Batch,
    /// Rows taken so far, counted from 1 as errors number them.
    rows: usize,
    /// How columns map to key and value, made from the first row's names.
    plan: Option<Plan>,
    /// Hears the rows taken so far, now and then.
    progress: Box<dyn FnMut(usize) + 'p>,
    /// About how many bytes of text `batch`'s records hold.
    bytes: usize,
    /// Records of `batch` already counted in `bytes`.
    counted: usize,
    /// Bytes per part and where parts go; None: one batch.
    parts: Option<(usize, mpsc::Sender<Streamed>)>,
    /// True once a part has been handed on.
    sent: bool,
}

impl<'p> Sink<'p> {
    /// Keeps every row in one batch.
    pub fn whole(progress: impl FnMut(usize) + 'p) -> Sink<'p> {
        Sink {
            batch: Batch::default(),
            rows: 0,
            plan: None,
            progress: Box::new(progress),
            bytes: 0,
            counted: 0,
            parts: None,
            sent: false,
        }
    }

    /// Hands the rows on to `to` in parts of about `part_bytes` bytes of
    /// text (as the values would be written in JSON).
    pub fn parts(
        part_bytes: usize,
        to: mpsc::Sender<Streamed>,
        progress: impl FnMut(usize) + 'p,
    ) -> Sink<'p> {
        Sink {
            parts: Some((part_bytes.max(1), to)),
            ..Sink::whole(progress)
        }
    }

    /// Every row `read` puts into a sink, in one batch.
    pub async fn collect(
        progress: impl FnMut(usize) + 'p,
        read: impl AsyncFnOnce(&mut Sink<'p>) -> Result<(), SourceError>,
    ) -> Result<Batch, SourceError> {
        let mut out = Sink::whole(progress);
        read(&mut out).await?;
        Ok(out.finish().await)
    }

    /// Takes the next row of `origin` (a table or query, as errors name
    /// it): the column plan is made from the first row's `names`, each
    /// cell converted by `cell`; a cell that cannot be converted is a bad
    /// row naming its column, skipped when `skip_bad`. Shared by every
    /// database reader.
    pub(crate) async fn take_row(
        &mut self,
        origin: &str,
        cols: &Columns,
        skip_bad: bool,
        names: impl FnOnce() -> Vec<String>,
        cell: impl Fn(usize) -> Result<Value, String>,
    ) -> Result<(), SourceError> {
        self.rows += 1;
        let n = self.rows;
        let plan = match &mut self.plan {
            Some(p) => p,
            None => self.plan.insert(Plan::new(origin, names(), cols)?),
        };
        let mut cells = Vec::with_capacity(plan.names.len());
        for i in 0..plan.names.len() {
            match cell(i) {
                Ok(v) => cells.push(v),
                Err(reason) => {
                    let b = BadRow {
                        source: origin.to_owned(),
                        row: n,
                        column: Some(plan.names[i].clone()),
                        reason,
                    };
                    if !skip_bad {
                        return Err(SourceError::Row(b));
                    }
                    self.batch.skipped.push(b);
                    return Ok(());
                }
            }
        }
        assemble(origin, plan, n, &mut cells, skip_bad, &mut self.batch)?;
        self.row_done().await?;
        if n % 4096 == 0 {
            (self.progress)(n);
        }
        Ok(())
    }

    /// True once a part has been handed on: the rows cannot be read again
    /// from the start.
    pub fn sent(&self) -> bool {
        self.sent
    }

    /// Drops the rows not yet handed on (a read that starts over).
    pub fn clear(&mut self) {
        self.batch = Batch::default();
        self.rows = 0;
        self.plan = None;
        self.bytes = 0;
        self.counted = 0;
    }

    /// Called after each row: hands the batch on once it holds a part.
    /// Fails when nobody takes parts any more (the load stopped).
    async fn row_done(&mut self) -> Result<(), SourceError> {
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
        let reading = async move {
            let mut sink = Sink::parts(1000, to, |_| {});
            for i in 1..=25 {
                sink.batch.records.push(record(i));
                sink.row_done().await.expect("taken");
            }
            sink.finish().await
        };
        let taking = async {
            let mut got = Vec::new();
            while let Some(part) = from.recv().await {
                let (batch, last) = part.expect("no error");
                got.push((batch.records.len(), last));
            }
            got
        };
        let (left, got) = tokio::join!(reading, taking);
        assert!(left.records.is_empty());
        // About 105 bytes a record: a part is full at the 10th.
        assert_eq!(got, vec![(10, false), (10, false), (5, true)]);
    }

    #[tokio::test]
    async fn a_reader_stops_when_nobody_takes_its_parts() {
        let (to, from) = mpsc::channel(1);
        drop(from);
        let mut sink = Sink::parts(10, to, |_| {});
        sink.batch.records.push(record(1));
        assert!(sink.row_done().await.is_err());
    }

    #[tokio::test]
    async fn a_whole_sink_keeps_everything() {
        let mut sink = Sink::whole(|_| {});
        for i in 1..=100 {
            sink.batch.records.push(record(i));
            sink.row_done().await.expect("kept");
        }
        assert_eq!(sink.finish().await.records.len(), 100);
    }
}
