//! Printers of single answers: a get, the ring's table, a check, a load's
//! summary. Text for people; `--json` forms are the library's views
//! serialized as they are.

use super::Table;
use dht::app::view::{GetReport, NodeRow};
use serde_json::json;
use std::io::Write;

/// A get: the value as JSON (nothing when it is missing: the caller says so
/// on stderr), then with `path` the lookup's route, hops and messages.
pub fn get(out: &mut impl Write, r: &GetReport, path: bool) -> std::io::Result<()> {
    if let Some(v) = &r.value {
        writeln!(out, "{v}")?;
    }
    if path {
        let shown: Vec<String> = r.path.iter().map(ToString::to_string).collect();
        // The nodes asked, from the start to the key's predecessor, which
        // names the successor; hops count the forwards (the paper's path
        // length).
        writeln!(out, "path: {}", shown.join(" -> "))?;
        writeln!(out, "successor: {}", r.successor)?;
        writeln!(out, "hops: {}", r.hops)?;
        writeln!(out, "messages: {}", r.messages)?;
        writeln!(out, "served by: {}", r.served_by)?;
    }
    Ok(())
}

/// The ring as a table (and with `fingers` each node's finger runs), then
/// a line with its size and settings.
pub fn ring(
    out: &mut impl Write,
    rows: &[NodeRow],
    fingers: bool,
    footer: &str,
) -> std::io::Result<()> {
    let mut table = RingTable::new(rows.iter().any(|r| r.host.is_some()), fingers);
    for r in rows {
        table.push(r);
    }
    table.write_to(out, footer)
}

/// The ring's table built a row at a time, each node kept as text alone,
/// so that a listing of a million nodes needs no more than its output.
pub struct RingTable {
    table: Table,
    /// Rows carry their physical node (a ring with virtual nodes).
    grouped: bool,
    /// The host of the last row: a host's name heads its group only.
    last_host: Option<Option<String>>,
    /// Each node's finger runs, one line per node, when asked for.
    fingers: Option<Vec<String>>,
}

impl RingTable {
    /// An empty table; `grouped` adds the HOST column, `fingers` the finger
    /// lines below the table.
    pub fn new(grouped: bool, fingers: bool) -> RingTable {
        let mut heads = vec![
            "NODE",
            "ID",
            "PREDECESSOR",
            "SUCCESSORS",
            "KEYS",
            "REPLICAS",
        ];
        if grouped {
            heads.insert(0, "HOST");
        }
        RingTable {
            table: Table::new(&heads),
            grouped,
            last_host: None,
            fingers: fingers.then(Vec::new),
        }
    }

    /// Adds the next node (rows of a host come together).
    pub fn push(&mut self, r: &NodeRow) {
        let mut cells = Vec::with_capacity(7);
        if self.grouped {
            let first = self.last_host.as_ref() != Some(&r.host);
            if first {
                self.last_host = Some(r.host.clone());
            }
            cells.push(match (&r.host, first) {
                (Some(h), true) => h.clone(),
                _ => String::new(),
            });
        }
        cells.extend([
            r.node.clone(),
            r.id.clone(),
            r.predecessor.clone().unwrap_or_else(|| "-".into()),
            r.successors.join(" "),
            r.keys.to_string(),
            r.replicas.to_string(),
        ]);
        self.table.row(cells);
        if let Some(lines) = &mut self.fingers {
            let f: Vec<String> = r
                .fingers
                .iter()
                .map(|run| format!("{}+:{}", run.from, run.node))
                .collect();
            lines.push(format!("{} fingers  {}", r.node, f.join("  ")));
        }
    }

    /// Writes the table, the finger lines and `footer`.
    pub fn write_to(self, out: &mut impl Write, footer: &str) -> std::io::Result<()> {
        self.table.write_to(out)?;
        if let Some(lines) = self.fingers {
            writeln!(out)?;
            for line in lines {
                writeln!(out, "{line}")?;
            }
        }
        writeln!(out, "{footer}")
    }
}

/// A check: "ok" and what holds, or each problem on its own line and a
/// count.
pub fn check(
    out: &mut impl Write,
    problems: &[String],
    nodes: usize,
    replicas: u8,
    hosts: Option<usize>,
) -> std::io::Result<()> {
    if problems.is_empty() {
        return match hosts {
            None => writeln!(
                out,
                "ok: one ordered ring of {nodes} nodes; every pointer is where it should be; every key is on its {replicas} nodes"
            ),
            Some(h) => writeln!(
                out,
                "ok: one ordered ring of {nodes} nodes on {h} physical nodes; every pointer is where it should be; every key is on its {replicas} nodes, each on a different physical node"
            ),
        };
    }
    for p in problems {
        writeln!(out, "{p}")?;
    }
    writeln!(
        out,
        "{} problems; `dht maintain --until-stable` repairs what maintenance can",
        problems.len()
    )
}

/// What a load did, for [`load_summary`].
pub struct LoadSummary {
    /// Records read, skipped ones included.
    pub records_read: u64,
    /// What routing them did.
    pub routed: dht::app::load::Routed,
    /// Rows skipped as bad.
    pub rejected: usize,
    /// Nodes in the ring afterwards.
    pub nodes: usize,
    /// The load created the ring.
    pub ring_created: bool,
    /// Keys the ring stores (primary copies).
    pub keys_stored: usize,
    /// Parts the sources were read and stored in (1 for a source read
    /// whole; see `--part-size`).
    pub parts: usize,
    /// Seconds reading, routing and persisting.
    pub seconds: [f64; 3],
}

/// A load's summary: aligned lines for people, or one JSON object.
pub fn load_summary(out: &mut impl Write, s: &LoadSummary, as_json: bool) -> std::io::Result<()> {
    let r = &s.routed;
    let [read, route, persist] = s.seconds;
    if as_json {
        let summary = json!({
            "records_read": s.records_read,
            "inserted": r.inserted,
            "overwritten": r.overwritten,
            "duplicates": r.duplicates,
            "rejected": s.rejected,
            "maintenance_rounds": r.rounds,
            "mean_hops": (r.mean_hops() * 100.0).round() / 100.0,
            "nodes": s.nodes,
            "ring_created": s.ring_created,
            "keys_stored": s.keys_stored,
            "parts": s.parts,
            "seconds": { "read": read, "route": route, "persist": persist },
        });
        return writeln!(out, "{summary}");
    }
    writeln!(out, "records read        {}", s.records_read)?;
    writeln!(out, "inserted            {}", r.inserted)?;
    writeln!(out, "overwritten         {}", r.overwritten)?;
    writeln!(out, "duplicate keys      {}", r.duplicates)?;
    writeln!(out, "rejected            {}", s.rejected)?;
    writeln!(out, "maintenance rounds  {}", r.rounds)?;
    writeln!(out, "mean hops           {:.2}", r.mean_hops())?;
    writeln!(
        out,
        "keys in the ring    {} on {} nodes",
        s.keys_stored, s.nodes
    )?;
    writeln!(
        out,
        "time                read {read:.2}s, route {route:.2}s, persist {persist:.2}s"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use dht::app::view::{FingerRun, NodeRef};

    fn text(f: impl FnOnce(&mut Vec<u8>) -> std::io::Result<()>) -> String {
        let mut out = Vec::new();
        f(&mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn get_prints_the_value_and_the_path() {
        let n = |name: &str, id: &str| NodeRef {
            name: name.into(),
            id: id.into(),
        };
        let r = GetReport {
            key: "k".into(),
            key_id: "35".into(),
            found: true,
            value: Some(std::sync::Arc::new(json!({"a": 1}))),
            served_by: n("b", "40"),
            path: vec![n("a", "1"), n("c", "30")],
            successor: n("b", "40"),
            hops: 1,
            messages: 3,
        };
        assert_eq!(text(|o| get(o, &r, false)), "{\"a\":1}\n");
        assert_eq!(
            text(|o| get(o, &r, true)),
            "{\"a\":1}\npath: a (1) -> c (30)\nsuccessor: b (40)\nhops: 1\nmessages: 3\nserved by: b (40)\n"
        );
    }

    #[test]
    fn ring_table_with_fingers() {
        let rows = vec![NodeRow {
            node: "N8".into(),
            id: "8".into(),
            predecessor: None,
            successors: vec!["N14".into(), "N21".into()],
            host: None,
            keys: 2,
            replicas: 0,
            fingers: vec![
                FingerRun {
                    from: 0,
                    node: "N14".into(),
                },
                FingerRun {
                    from: 3,
                    node: "N21".into(),
                },
            ],
        }];
        assert_eq!(
            text(|o| ring(o, &rows, true, "1 nodes")),
            "NODE  ID  PREDECESSOR  SUCCESSORS  KEYS  REPLICAS\n\
             N8    8   -            N14 N21     2     0\n\
             \n\
             N8 fingers  0+:N14  3+:N21\n\
             1 nodes\n"
        );
    }

    #[test]
    fn check_lists_problems_or_says_ok() {
        assert!(text(|o| check(o, &[], 4, 3, None)).starts_with("ok: one ordered ring of 4 nodes"));
        let t = text(|o| check(o, &["a is wrong".into()], 4, 3, None));
        assert_eq!(
            t,
            "a is wrong\n1 problems; `dht maintain --until-stable` repairs what maintenance can\n"
        );
    }
}
