//! `dht ring`: the nodes in ring order with their pointers and key counts
//! (read a row at a time, or built whole with `--whole-ring`), one node
//! (`--node`, read on demand), and the ring drawn as a circle (`--svg`).

use super::members::reading_from;
use super::node_named;
use super::progress::Phase;
use crate::output::{self, svg};
use anyhow::Context;
use clap::Args;
use dht::app::circle::Circle;
use dht::app::view;
use dht::state::{Access, Reading, Scope, State};
use std::collections::HashSet;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct RingArgs {
    /// Also list each node's distinct fingers.
    #[arg(long)]
    pub fingers: bool,
    /// Show this node only, reading only it and the nodes it points to
    /// (with virtual nodes, a physical node's name shows all of its nodes).
    /// Its keys and replicas are the live copies it holds in the span it
    /// keeps copies of (from its farthest known predecessor to itself);
    /// the listing of every node also counts copies held outside that span
    /// and not yet dropped by maintenance.
    #[arg(long, value_name = "NAME")]
    pub node: Option<String>,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Draw the ring as a circle into this SVG file (`-` for standard
    /// output): nodes at the angles of their ids, keys as ticks.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["node", "json", "fingers"])]
    pub svg: Option<PathBuf>,
    /// With --svg: also draw the lookup of this key, hop by hop.
    #[arg(long, value_name = "KEY", requires = "svg")]
    pub path: Option<String>,
    /// With --path: start the lookup at this node (default: one chosen by
    /// the seed, as `dht get` does).
    #[arg(long, value_name = "NODE", requires = "path")]
    pub from: Option<String>,
}

pub async fn show(
    path: &Path,
    reading: Reading,
    a: RingArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    if let Some(name) = &a.node {
        return show_node_row(path, reading, name, &a, out).await;
    }
    let mut st = State::open(path, Access::Read).await?;
    if let Some(file) = &a.svg {
        return show_svg(path, &mut st, reading, &a, file, out).await;
    }
    if reading == Reading::Whole {
        return show_whole(path, &mut st, &a, out).await;
    }
    // The listing decodes one node row at a time and names the nodes it
    // points at from the names alone: no ring is built.
    let params = st.listing_settings().await?;
    // Every row's routing state is decoded, and so checked, below.
    let (names, counts) = st.names_and_key_counts(false).await?;
    let names = view::ReadNames { params, names };
    let held = |node: &str| counts.get(node).map(Vec::as_slice).unwrap_or(&[]);
    // A million rows go out in large writes, not a write per line.
    let mut out = std::io::BufWriter::with_capacity(1 << 16, out);
    if a.json && !params.has_vnodes() {
        ring_json(&mut st, &names, held, &mut out).await?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let row = |name: &str, n: &dht::chord::Node| match a.json || a.fingers {
        true => view::node_row(&names, n, held(name)),
        false => view::node_row_without_fingers(&names, n, held(name)),
    };
    let footer = |nodes: usize, hosts: usize| {
        let on_hosts = match params.v() {
            1 => String::new(),
            v => format!(" on {hosts} physical nodes ({v} virtual nodes each)"),
        };
        format!(
            "{nodes} nodes{on_hosts}, r={}, m={}",
            params.replicas, params.bits
        )
    };
    let phase = Phase::start(reading_from(path));
    if !params.has_vnodes() {
        // Without hosts to group by, each node becomes table text at once.
        let mut table = output::RingTable::new(false, a.fingers);
        st.for_each_node(params, |name, n| {
            table.push(&row(name, n));
            ControlFlow::Continue(())
        })
        .await?;
        drop(phase);
        table.write_to(&mut out, &footer(names.names.len(), 0))?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut rows = Vec::with_capacity(names.names.len());
    st.for_each_node(params, |name, n| {
        rows.push(row(name, n));
        ControlFlow::Continue(())
    })
    .await?;
    let rows = view::grouped_by_host(rows);
    drop(phase);
    if a.json {
        serde_json::to_writer_pretty(&mut out, &rows)?;
        writeln!(out)?;
        out.flush()?;
        return Ok(ExitCode::SUCCESS);
    }
    let hosts: HashSet<&str> = rows.iter().filter_map(|r| r.host.as_deref()).collect();
    let footer = footer(rows.len(), hosts.len());
    output::ring(&mut out, &rows, a.fingers, &footer)?;
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// `--whole-ring ring`: the listing from the ring built whole, as the
/// server shows it; the same output as the listing read row by row.
async fn show_whole(
    path: &Path,
    st: &mut State,
    a: &RingArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let phase = Phase::start(reading_from(path));
    let loaded = st.load(Scope::Routing).await?;
    let counts = st.key_counts().await?;
    drop(phase);
    let w = &loaded.world;
    let rows = view::ring_rows(w, &counts);
    if a.json {
        serde_json::to_writer_pretty(&mut *out, &rows)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let on_hosts = match w.params().v() {
        1 => String::new(),
        v => format!(
            " on {} physical nodes ({v} virtual nodes each)",
            w.host_names().len()
        ),
    };
    let footer = format!(
        "{} nodes{on_hosts}, r={}, m={}",
        w.len(),
        w.params().replicas,
        w.bits()
    );
    output::ring(out, &rows, a.fingers, &footer)?;
    Ok(ExitCode::SUCCESS)
}

/// `ring --json` without virtual nodes: each node written as it is read,
/// the array the same as one written whole.
async fn ring_json<'a>(
    st: &mut State,
    names: &view::ReadNames,
    held: impl Fn(&str) -> &'a [dht::chord::Id],
    out: &mut impl Write,
) -> anyhow::Result<()> {
    use serde::ser::{SerializeSeq, Serializer};
    let mut ser = serde_json::Serializer::pretty(&mut *out);
    let mut seq = ser.serialize_seq(None)?;
    let mut failed = None;
    st.for_each_node(names.params, |name, n| {
        match seq.serialize_element(&view::node_row(names, n, held(name))) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    })
    .await?;
    if let Some(e) = failed {
        return Err(e.into());
    }
    seq.end()?;
    writeln!(out)?;
    Ok(())
}

/// `ring --svg FILE [--path KEY]`: the circle, written whole or not at all.
/// The circle needs every node's position and name and the key counts,
/// not the routing state: no ring is built, and the lookup reads the
/// nodes it reaches, as `get --path` does (`--whole-ring` builds the ring
/// and routes on it, for comparison).
async fn show_svg(
    path: &Path,
    st: &mut State,
    reading: Reading,
    a: &RingArgs,
    file: &Path,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let lookup = a.path.as_deref().map(|key| (key, a.from.as_deref()));
    let phase = Phase::start(reading_from(path));
    let (circle, route) = match reading {
        Reading::Whole => {
            let mut loaded = st.load(Scope::Routing).await?;
            let counts = st.key_counts().await?;
            let circle = Circle::counted(&loaded.world, &counts);
            let route = lookup
                .map(|(key, from)| route_of(&mut loaded.world, key, from))
                .transpose()?;
            (circle, route)
        }
        Reading::OnDemand => {
            let params = st.listing_settings().await?;
            // The picture reads no routing state otherwise: it is checked
            // here, as `dump` checks it.
            let (names, counts) = st.names_and_key_counts(true).await?;
            let mut members: Vec<_> = names.into_iter().collect();
            members.sort_unstable_by_key(|(id, _)| *id);
            let members: Vec<_> = members.into_iter().map(|(id, n)| (id.id(), n)).collect();
            let circle = Circle::of_members(params, &members, &counts);
            let route = match lookup {
                Some((key, from)) => {
                    let (_, route) = st
                        .with_ring(None, Reading::OnDemand, |w| route_of(w, key, from))
                        .await?;
                    Some(route?)
                }
                None => None,
            };
            (circle, route)
        }
    };
    drop(phase);
    let doc = svg::ring(&circle, route.as_ref());
    if file == Path::new("-") {
        out.write_all(doc.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    write_whole(file, doc.as_bytes())
        .with_context(|| format!("cannot write {}", file.display()))?;
    let drawn = match &route {
        Some(r) => format!(
            " with the lookup of {:?} ({} hop{})",
            r.key,
            r.hops,
            if r.hops == 1 { "" } else { "s" }
        ),
        None => String::new(),
    };
    writeln!(
        out,
        "drew {} nodes and {} keys{drawn} into {}",
        circle.nodes.len(),
        circle.keys,
        file.display()
    )?;
    Ok(ExitCode::SUCCESS)
}

/// The lookup of `key` from `from` (default: the node the seed picks), as
/// the picture draws it.
fn route_of(w: &mut dht::sim::World, key: &str, from: Option<&str>) -> anyhow::Result<svg::Route> {
    let from = from.map(|f| node_named(w, f)).transpose()?;
    let at = w.key(key).id;
    let lookup = w.lookup(at, from)?;
    Ok(svg::Route {
        key: key.to_owned(),
        key_at: w.bits().fraction(at),
        path: lookup.path.iter().map(|n| w.name(*n)).collect(),
        successor: w.name(lookup.successor),
        hops: lookup.hops(),
        messages: w.last_op_messages(),
    })
}

/// Writes `bytes` to `file` through a temporary file beside it, so that a
/// failure leaves no half-written picture.
pub(super) fn write_whole(file: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut tmp = file.as_os_str().to_owned();
    tmp.push(format!(".tmp-{}", std::process::id()));
    let tmp = PathBuf::from(tmp);
    let written = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, file));
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    written
}

/// `ring --node NAME`: one node, its neighbours read for their names.
async fn show_node_row(
    path: &Path,
    reading: Reading,
    name: &str,
    a: &RingArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let mut st = State::open(path, Access::Read).await?;
    let (loaded, found) = st
        .with_ring(None, reading, |w| {
            let (ids, host) = named_or_host(w, name)?;
            let mut nodes = Vec::with_capacity(ids.len());
            for id in ids {
                let node = w.look_at(id)?.cloned().expect("a named node is live");
                for other in view::named_by(&node) {
                    w.look_at(other)?;
                }
                nodes.push(node);
            }
            anyhow::Ok((nodes, host))
        })
        .await?;
    let (nodes, host) = found?;
    let w = &loaded.world;
    let mut rows = Vec::with_capacity(nodes.len());
    for node in &nodes {
        let from = node.kept_from();
        let held = st
            .keys_held(&loaded, node.id, from.id(), node.id.id())
            .await?;
        rows.push(view::node_row(w, node, &held));
    }
    if a.json {
        // One node is an object; a physical node's virtual nodes a list.
        match host {
            false => serde_json::to_writer_pretty(&mut *out, &rows[0])?,
            true => serde_json::to_writer_pretty(&mut *out, &rows)?,
        }
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    let footer = format!(
        "{} of {} nodes, r={}, m={}",
        rows.len(),
        w.len(),
        w.params().replicas,
        w.bits()
    );
    output::ring(out, &rows, a.fingers, &footer)?;
    Ok(ExitCode::SUCCESS)
}

/// The node named `name`; on a ring with virtual nodes, failing that, the
/// virtual nodes of the physical node `name` (true: a physical node).
fn named_or_host(
    w: &mut dht::sim::World,
    name: &str,
) -> anyhow::Result<(Vec<dht::chord::NodeId>, bool)> {
    use dht::sim::{World, WorldError};
    match w.named(name) {
        Ok(id) => return Ok((vec![id], false)),
        Err(WorldError::NoSuchNode(_)) if w.params().has_vnodes() => {}
        Err(WorldError::NoSuchNode(_)) => return Ok((vec![node_named(w, name)?], false)),
        Err(e) => return Err(e.into()),
    }
    let ids = World::vnodes_by(w.params().v(), name, |n| w.named(n))?;
    if ids.is_empty() {
        // Not a physical node either: the error that lists names.
        return Ok((vec![node_named(w, name)?], false));
    }
    Ok((ids, true))
}
