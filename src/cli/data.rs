//! Commands on keys: dump, get, put, delete.

use super::{commit, node_named, note, print_json};
use crate::output::{self, Format, Listed};
use anyhow::Context;
use clap::Args;
use dht::app::view::{GetReport, NodeRef};
use dht::sim::World;
use dht::state::{Access, Loaded, Reading, State};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct DumpArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// List every copy (primary and replicas) and where it lives.
    #[arg(long)]
    pub replicas: bool,
}

pub async fn dump(path: &Path, a: DumpArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let mut st = State::open(path, Access::Read).await?;
    // The listing needs the slices and the nodes' names alone: the routing
    // state is checked as the node rows are read, not decoded into a ring.
    let bits = st.listing_settings().await?.bits;
    let mut out = output::EntryWriter::new(out, a.format, a.replicas)?;
    // Key by key as the state file gives them, in ring order: a million
    // keys stream out without the whole listing in memory.
    let mut failed = None;
    st.for_each_key(|key, holders| {
        if failed.is_some() {
            return;
        }
        // Holders clockwise from the key, so the first is the node
        // responsible (its successor among the holders).
        let from = bits.next(key.id);
        holders.sort_by_key(|h| bits.distance(from, h.node.id()));
        for (i, h) in holders.drain(..).enumerate() {
            if i > 0 && !a.replicas {
                break;
            }
            let listed = Listed {
                key: key.text.clone(),
                value: h.value,
                node: h.node_name,
                node_id: bits.show(h.node.id()),
                role: a
                    .replicas
                    .then_some(if i == 0 { "primary" } else { "replica" }),
            };
            if let Err(e) = out.write(&listed) {
                failed = Some(e);
                return;
            }
        }
    })
    .await?;
    if let Some(e) = failed {
        return Err(e);
    }
    out.finish()?;
    Ok(ExitCode::SUCCESS)
}

/// Opens the state and runs `op` on the ring with every copy of one key,
/// in one transaction (one snapshot for reads; the write lock for
/// writes). `op` may run several times (see [`State::on_demand`]).
async fn run_on_key<T>(
    path: &Path,
    access: Access,
    reading: Reading,
    key: &str,
    op: impl FnMut(&mut World) -> T,
) -> anyhow::Result<(State, Loaded, T)> {
    let mut st = State::open(path, access).await?;
    let id = st.params().await?.bits.hash(key);
    let (loaded, out) = st.with_ring(Some(id), reading, op).await?;
    Ok((st, loaded, out))
}

#[derive(Debug, Args)]
pub struct GetArgs {
    /// The key.
    pub key: String,
    /// Show the lookup path (node names and ids) and hop count.
    #[arg(long)]
    pub path: bool,
    /// Start the lookup at this node (default: one chosen by the seed).
    #[arg(long, value_name = "NODE")]
    pub from: Option<String>,
    /// Print one JSON object with the value, the path and the serving node.
    #[arg(long)]
    pub json: bool,
}

pub async fn get(
    path: &Path,
    reading: Reading,
    a: GetArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let (_st, _, report) = run_on_key(path, Access::Read, reading, &a.key, |w| {
        let from = a.from.as_deref().map(|f| node_named(w, f)).transpose()?;
        let got = w
            .get(&a.key, from)
            .with_context(|| format!("looking up {:?}", a.key))?;
        anyhow::Ok(GetReport::new(w, &a.key, &got))
    })
    .await?;
    let report = report?;
    if a.json {
        print_json(out, &report)?;
    } else {
        if !report.found {
            note(&format!("key {:?} not found", a.key));
        }
        output::get(out, &report, a.path)?;
    }
    Ok(if report.found {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// The key.
    pub key: String,
    /// The value: JSON if it parses as JSON, text otherwise.
    pub value: String,
    /// Store the value as text even if it parses as JSON.
    #[arg(long)]
    pub text: bool,
    /// Print one JSON object (key, node, node_id, replaced) instead of a
    /// sentence, for scripts.
    #[arg(long)]
    pub json: bool,
}

/// A command-line value: JSON when it parses, else text.
pub fn parse_value(s: &str, text: bool) -> Value {
    if text {
        return Value::String(s.to_owned());
    }
    serde_json::from_str(s).unwrap_or_else(|_| Value::String(s.to_owned()))
}

pub async fn put(
    path: &Path,
    reading: Reading,
    a: PutArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    if a.key.is_empty() {
        anyhow::bail!("the key is empty");
    }
    let value = parse_value(&a.value, a.text);
    let (mut st, mut loaded, put) = run_on_key(path, Access::Write, reading, &a.key, |w| {
        let put = w
            .put(&a.key, value.clone(), None)
            .with_context(|| format!("storing {:?}", a.key))?;
        anyhow::Ok((NodeRef::of(w, put.served_by), put.result.is_some()))
    })
    .await?;
    let (node, replaced) = put?;
    st.save(&mut loaded).await?;
    st.forget_lost(&a.key).await?;
    commit(st, "put", &a.key, "").await?;
    if a.json {
        let done =
            json!({ "key": a.key, "node": node.name, "node_id": node.id, "replaced": replaced });
        print_json(out, &done)?;
        return Ok(ExitCode::SUCCESS);
    }
    writeln!(
        out,
        "stored {:?} at {node}{}",
        a.key,
        if replaced {
            ", replacing its value"
        } else {
            ""
        }
    )?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The key.
    pub key: String,
    /// Print one JSON object (key, node, node_id, deleted) instead of a
    /// sentence, for scripts; a missing key still exits with status 1.
    #[arg(long)]
    pub json: bool,
}

pub async fn delete(
    path: &Path,
    reading: Reading,
    a: DeleteArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let (mut st, mut loaded, deleted) = run_on_key(path, Access::Write, reading, &a.key, |w| {
        let deleted = w
            .delete(&a.key, None)
            .with_context(|| format!("deleting {:?}", a.key))?;
        anyhow::Ok((NodeRef::of(w, deleted.served_by), deleted.result.is_some()))
    })
    .await?;
    let (node, found) = deleted?;
    st.save(&mut loaded).await?;
    st.forget_lost(&a.key).await?;
    commit(st, "delete", &a.key, "").await?;
    if a.json {
        let done = json!({ "key": a.key, "node": node.name, "node_id": node.id, "deleted": found });
        print_json(out, &done)?;
        return Ok(if found {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        });
    }
    match found {
        true => {
            writeln!(out, "deleted {:?} at {node}", a.key)?;
            Ok(ExitCode::SUCCESS)
        }
        false => {
            note(&format!("key {:?} not found", a.key));
            Ok(ExitCode::from(1))
        }
    }
}
