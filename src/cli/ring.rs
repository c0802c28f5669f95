//! Commands that change or show membership: init, join, leave, fail,
//! maintain, ring, check.

use super::progress::Phase;
use super::{NewRing, commit, host_named, node_named, note, open};
use crate::output::{self, svg};
use anyhow::Context;
use clap::Args;
use dht::app::build::{self, Built};
use dht::app::circle::Circle;
use dht::app::{fail, members, view};

use dht::state::{Access, Reading, Scope, State, StateError};
use std::collections::HashSet;
use std::io::Write;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Number of nodes, named node-0, node-1, ... (physical nodes, with
    /// --vnodes)
    #[arg(long, default_value_t = 8, conflicts_with = "ids")]
    pub nodes: usize,
    /// Place nodes at these ids instead (named N<id>), e.g. the paper's
    /// 1,8,14,21,32,38,42,48,51,56 with --bits 6.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "ID,...",
        conflicts_with = "vnodes"
    )]
    pub ids: Vec<String>,
    #[command(flatten)]
    pub ring: NewRing,
    /// Build through the join protocol even for a large ring (slow: N joins
    /// and maintenance until converged).
    #[arg(long, conflicts_with = "bulk")]
    pub protocol: bool,
    /// Compute the converged ring directly even for a small one.
    #[arg(long)]
    pub bulk: bool,
    /// Replace an existing ring (its data is lost).
    #[arg(long)]
    pub force: bool,
}

pub async fn init(path: &Path, a: InitArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let params = a.ring.params()?;
    let nodes = build::planned_nodes(params, a.nodes, &a.ids)?;
    let n = nodes.len();
    let bulk = build::use_bulk(n, a.bulk, a.protocol);
    let mut st = State::open(path, Access::Create).await?;
    if st.has_ring().await? && !a.force {
        return Err(StateError::Exists(path.to_path_buf()).into());
    }
    let phase = Phase::start(format!("building a ring of {n} nodes"));
    let (mut world, built) = build::build_ring(params, a.ring.seed, nodes, bulk)?;
    phase.set(writing(path));
    st.create(params, world.counters()).await?;
    world.set_recording_changes(true);
    let mut loaded = dht::state::Loaded::fresh(world);
    st.save(&mut loaded).await?;
    commit(st, "init", "", &format!("{n} nodes")).await?;
    drop(phase);
    let how = match built {
        Built::Protocol { rounds } => {
            format!("through the join protocol; converged after {rounds} maintenance rounds")
        }
        Built::Bulk => "in its converged state (bulk build)".to_owned(),
    };
    let size = build::size_in_words(params, n);
    writeln!(
        out,
        "created a ring of {size} (r={}, m={}, seed={}) {how}",
        a.ring.replicas, a.ring.bits, a.ring.seed
    )?;
    writeln!(out, "state: {}", path.display())?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Name of the new node (default: the next free node-<i>).
    pub name: Option<String>,
    /// Add this many nodes (named node-<i>), at least 1.
    #[arg(long, default_value_t = 1, conflicts_with = "name", value_parser = clap::value_parser!(u32).range(1..))]
    pub count: u32,
    /// Join through this node (default: one chosen by the seed).
    #[arg(long, value_name = "NODE")]
    pub via: Option<String>,
}

pub async fn join(path: &Path, a: JoinArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let mut st = State::open(path, Access::Write).await?;
    let via: Vec<&str> = a.via.as_deref().into_iter().collect();
    let name: Vec<&str> = a.name.as_deref().into_iter().collect();
    names_known(&mut st, &via, &name).await?;
    let phase = Phase::start(reading_from(path));
    let mut loaded = st.load(Scope::All).await?;
    let w = &mut loaded.world;
    let via = a.via.as_deref().map(|v| node_named(w, v)).transpose()?;
    let names: Vec<String> = match a.name {
        Some(n) => vec![n],
        None => members::free_names(w, a.count as usize),
    };
    let mut joined = Vec::new();
    for name in &names {
        joined.push(members::join(w, name, via)?);
    }
    phase.set(writing(path));
    st.save(&mut loaded).await?;
    commit(st, "join", &names.join(" "), "").await?;
    drop(phase);
    for line in joined {
        writeln!(out, "{line}")?;
    }
    note("run `dht maintain` to link the new nodes into the ring");
    Ok(ExitCode::SUCCESS)
}

/// The phase of reading the ring from `path`.
fn reading_from(path: &Path) -> String {
    format!("reading the ring from {}", path.display())
}

/// The phase of writing the ring back to `path`.
fn writing(path: &Path) -> String {
    format!("writing the ring to {}", path.display())
}

/// Checks the node names a membership command was given through the
/// nodes table's name index before the command reads the whole ring, so a
/// mistyped name on a million-node ring is answered at once, in the words
/// the whole ring would answer with: `live` must name live nodes, `new`
/// must be free. Physical nodes of a ring with virtual nodes are not in the
/// index by their own name: such rings are checked whole, as before.
async fn names_known(st: &mut State, live: &[&str], new: &[&str]) -> anyhow::Result<()> {
    use dht::sim::WorldError;
    if st.listing_settings().await?.has_vnodes() {
        return Ok(());
    }
    let (_, checked) = st
        .on_demand(None, |w| -> anyhow::Result<()> {
            for name in live {
                node_named(w, name)?;
            }
            for name in new {
                dht::sim::world::check_name(name)?;
                match w.named(name) {
                    Ok(_) => return Err(WorldError::NameTaken((*name).to_owned()).into()),
                    Err(WorldError::NoSuchNode(_)) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        })
        .await?;
    checked
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's name, as `dht ring` lists it.
    pub node: String,
}

pub async fn leave(path: &Path, a: NodeArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let mut st = State::open(path, Access::Write).await?;
    names_known(&mut st, &[&a.node], &[]).await?;
    let phase = Phase::start(reading_from(path));
    let mut loaded = st.load(Scope::All).await?;
    let w = &mut loaded.world;
    let ids = host_named(w, &a.node)?;
    let left = members::leave(w, &ids)
        .map_err(|(shown, e)| anyhow::Error::new(e).context(format!("{shown} cannot leave")))?;
    phase.set(writing(path));
    st.save(&mut loaded).await?;
    commit(st, "leave", &a.node, "").await?;
    drop(phase);
    writeln!(out, "{left}")?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct FailArgs {
    /// The node's name.
    pub node: String,
    /// Crash it even if that leaves another node with no live successor
    /// (Zave's failure precondition) or loses keys it alone holds.
    #[arg(long)]
    pub force: bool,
}

pub async fn fail(path: &Path, a: FailArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let mut st = State::open(path, Access::Write).await?;
    names_known(&mut st, &[&a.node], &[]).await?;
    let phase = Phase::start(reading_from(path));
    let mut loaded = st.load(Scope::All).await?;
    let w = &mut loaded.world;
    let ids = host_named(w, &a.node)?;
    let crashed = fail::crash(w, &ids, a.force)?;
    phase.set(writing(path));
    st.save(&mut loaded).await?;
    st.record_lost(&crashed.node, &crashed.lost).await?;
    commit(
        st,
        "fail",
        &a.node,
        &format!("{} keys lost", crashed.lost.len()),
    )
    .await?;
    drop(phase);
    writeln!(out, "{}", members::crashed(&crashed, true))?;
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct MaintainArgs {
    /// Rounds to run.
    #[arg(long, default_value_t = 1, conflicts_with = "until_stable")]
    pub rounds: usize,
    /// Run rounds until every invariant holds (at most 500).
    #[arg(long)]
    pub until_stable: bool,
}

pub async fn maintain(
    path: &Path,
    a: MaintainArgs,
    out: &mut impl Write,
) -> anyhow::Result<ExitCode> {
    let phase = Phase::start(reading_from(path));
    let (mut st, mut loaded) = open(path, Access::Write, Scope::All).await?;
    let w = &mut loaded.world;
    let mut unsettled = None;
    let (rounds, clean) = if a.until_stable {
        let on_round = |i| phase.set(format!("maintenance round {i} (until stable)"));
        match w.converge_with(build::CONVERGE_LIMIT, on_round) {
            Ok(r) => (r, true),
            Err(e) => {
                unsettled = Some(e.to_string());
                (build::CONVERGE_LIMIT, false)
            }
        }
    } else {
        let mut messages = 0;
        for i in 1..=a.rounds {
            phase.set(format!("maintenance round {i} of {}", a.rounds));
            messages += w.round().messages;
        }
        tracing::info!(messages, "maintenance done");
        phase.set("checking the ring");
        (a.rounds, w.check().is_empty())
    };
    phase.set(writing(path));
    st.save(&mut loaded).await?;
    commit(st, "maintain", "", &format!("{rounds} rounds")).await?;
    drop(phase);
    if let Some(why) = unsettled {
        note(&why);
    }
    writeln!(
        out,
        "ran {rounds} maintenance rounds; ring {}",
        if clean {
            "is stable"
        } else {
            "is still settling (run `dht check`)"
        }
    )?;
    Ok(ExitCode::SUCCESS)
}

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
    let names = view::ReadNames {
        params,
        names: st.node_names().await?,
    };
    let counts = st.key_counts().await?;
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
            let mut members: Vec<_> = st.node_names().await?.into_iter().collect();
            members.sort_unstable_by_key(|(id, _)| *id);
            let members: Vec<_> = members.into_iter().map(|(id, n)| (id.id(), n)).collect();
            let counts = st.key_counts().await?;
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

#[derive(Debug, Args)]
pub struct CheckArgs {
    /// Save what can be saved from a damaged state file and write it back:
    /// a node whose routing state is damaged is rebuilt (maintenance then
    /// restores its pointers and replicas); a slice row that is damaged is
    /// dropped, and with it every key stored there (each key keeps all its
    /// copies in its slice's row). Damaged settings cannot be repaired.
    #[arg(long)]
    pub repair: bool,
}

pub async fn check(path: &Path, a: CheckArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    if a.repair {
        return repair(path, out).await;
    }
    let mut st = State::open(path, Access::Read).await?;
    let phase = Phase::start(reading_from(path));
    let loaded = st.load(Scope::All).await?;
    let w = &loaded.world;
    phase.set("checking every invariant");
    let mut problems: Vec<String> = w.check().iter().map(|p| w.describe(p)).collect();
    problems.extend(st.census_problem(w).await?);
    for lost in st.lost().await? {
        problems.push(format!(
            "key {:?} is lost: its last copy was on {} when it was crashed with --force (put it again, or delete it to stop this report)",
            lost.key, lost.node
        ));
    }
    let hosts = w.params().has_vnodes().then(|| w.host_names().len());
    drop(phase);
    output::check(out, &problems, w.len(), w.params().replicas, hosts)?;
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// `check --repair`: salvage, maintain, write back, say what was done.
async fn repair(path: &Path, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let mut st = State::open(path, Access::Write).await?;
    let phase = Phase::start(format!("reading every row of {}", path.display()));
    let (mut world, salvage) = st.salvage().await?;
    drop(phase);
    if salvage.is_clean() {
        if st.census_problem(&world).await?.is_some() {
            st.recount_census().await?;
            commit(st, "repair", "", "recounted the census").await?;
            writeln!(out, "recounted the census of members per slice")?;
            return Ok(ExitCode::SUCCESS);
        }
        writeln!(out, "nothing to repair: every row reads back intact")?;
        return Ok(ExitCode::SUCCESS);
    }
    let params = st.params().await?;
    let phase = Phase::start("repairing");
    let on_round = |i| phase.set(format!("maintenance round {i} (until stable)"));
    let rounds = world.converge_with(build::CONVERGE_LIMIT, on_round).ok();
    phase.set(writing(path));
    st.create(params, world.counters()).await?;
    let mut loaded = dht::state::Loaded::fresh(world);
    st.save(&mut loaded).await?;
    commit(st, "repair", "", "").await?;
    drop(phase);
    for (node, why) in &salvage.rebuilt {
        writeln!(out, "rebuilt the routing state of {node} ({why})")?;
    }
    for (nid, why) in &salvage.dropped_nodes {
        writeln!(
            out,
            "dropped node row {nid} ({why}): the node is gone, as if it had crashed"
        )?;
    }
    for (slice, lo, hi, why) in &salvage.dropped_slices {
        writeln!(
            out,
            "dropped slice {slice} (positions {lo} to {hi}): {why}; every key stored there is lost"
        )?;
    }
    match rounds {
        Some(r) => writeln!(
            out,
            "ran {r} maintenance rounds; the repaired ring is stable"
        )?,
        None => writeln!(
            out,
            "the repaired ring is still settling (run `dht maintain`)"
        )?,
    }
    Ok(ExitCode::SUCCESS)
}
