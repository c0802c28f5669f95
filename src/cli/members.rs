//! Commands that make or change the ring's membership and keep it sound:
//! init, join, leave, fail, maintain, check.

use super::progress::Phase;
use super::{NewRing, commit, host_named, node_named, note, open, print_json};
use crate::output;
use clap::Args;
use dht::app::build::{self, Built};
use dht::app::{fail, members};
use dht::chord::NodeId;
use dht::state::{Access, Loaded, Scope, State, StateError};
use serde_json::json;
use std::io::Write;
use std::path::Path;
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
    /// Print one JSON object instead of a sentence, for scripts.
    #[arg(long)]
    pub json: bool,
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
    let chord_nodes = world.len();
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
    if a.json {
        let (built, rounds) = match built {
            Built::Protocol { rounds } => ("protocol", Some(rounds)),
            Built::Bulk => ("bulk", None),
        };
        print_json(
            out,
            &json!({
                "nodes": chord_nodes,
                "physical_nodes": params.has_vnodes().then_some(n),
                "vnodes": params.v(),
                "replicas": params.replicas,
                "bits": params.bits.get(),
                "seed": a.ring.seed,
                "built": built,
                "rounds": rounds,
                "state": path.display().to_string(),
            }),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
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
    /// Print one JSON object instead of a sentence, for scripts.
    #[arg(long)]
    pub json: bool,
}

pub async fn join(path: &Path, a: JoinArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let mut st = State::open(path, Access::Write).await?;
    let via: Vec<&str> = a.via.as_deref().into_iter().collect();
    let name: Vec<&str> = a.name.as_deref().into_iter().collect();
    names_known(&mut st, &via, &[], &name).await?;
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
        joined.push(members::join_nodes(w, name, via)?);
    }
    let lines: Vec<String> = names
        .iter()
        .zip(&joined)
        .map(|(name, j)| members::joined_sentence(w, name, j))
        .collect();
    phase.set(writing(path));
    st.save(&mut loaded).await?;
    commit(st, "join", &names.join(" "), "").await?;
    drop(phase);
    if a.json {
        let joined: Vec<_> = joined.into_iter().flatten().collect();
        print_json(out, &json!({ "joined": joined }))?;
        return Ok(ExitCode::SUCCESS);
    }
    for line in lines {
        writeln!(out, "{line}")?;
    }
    note("run `dht maintain` to link the new nodes into the ring");
    Ok(ExitCode::SUCCESS)
}

/// The phase of reading the ring from `path`.
pub(super) fn reading_from(path: &Path) -> String {
    format!("reading the ring from {}", path.display())
}

/// The phase of writing the ring back to `path`.
fn writing(path: &Path) -> String {
    format!("writing the ring to {}", path.display())
}

/// Checks the names a membership command was given through the nodes
/// table's name index before the command reads the whole ring, so a
/// mistyped name on a million-node ring is answered at once, in the words
/// the whole ring would answer with: `nodes` must name live nodes, `hosts`
/// live physical nodes (on a ring with virtual nodes, those of `host#0` …),
/// `new` must be free names for a physical node.
async fn names_known(
    st: &mut State,
    nodes: &[&str],
    hosts: &[&str],
    new: &[&str],
) -> anyhow::Result<()> {
    use dht::sim::WorldError;
    let (_, checked) = st
        .on_demand(None, |w| -> anyhow::Result<()> {
            for name in nodes {
                node_named(w, name)?;
            }
            for name in hosts {
                host_named(w, name)?;
            }
            for name in new {
                w.check_host_name(name)?;
                match w.physical_named(name) {
                    Ok(_) => return Err(WorldError::NameTaken((*name).to_owned()).into()),
                    Err(WorldError::NoSuchNode(_) | WorldError::VirtualNode { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            Ok(())
        })
        .await?;
    checked
}

/// Opens the state for a change to the physical node `name` (leave,
/// fail): its name checked first, then the whole ring read, showing that
/// phase; returns its nodes.
async fn read_for_change(
    path: &Path,
    name: &str,
) -> anyhow::Result<(State, Loaded, Phase, Vec<NodeId>)> {
    let mut st = State::open(path, Access::Write).await?;
    names_known(&mut st, &[], &[name], &[]).await?;
    let phase = Phase::start(reading_from(path));
    let mut loaded = st.load(Scope::All).await?;
    let ids = host_named(&mut loaded.world, name)?;
    Ok((st, loaded, phase, ids))
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's name, as `dht ring` lists it.
    pub node: String,
    /// Print one JSON object instead of a sentence, for scripts.
    #[arg(long)]
    pub json: bool,
}

pub async fn leave(path: &Path, a: NodeArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let (mut st, mut loaded, phase, ids) = read_for_change(path, &a.node).await?;
    let w = &mut loaded.world;
    let left = members::leave_host(w, &ids)
        .map_err(|(shown, e)| anyhow::Error::new(e).context(format!("{shown} cannot leave")))?;
    phase.set(writing(path));
    st.save(&mut loaded).await?;
    commit(st, "leave", &a.node, "").await?;
    drop(phase);
    if a.json {
        print_json(out, &left)?;
    } else {
        writeln!(out, "{left}")?;
    }
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
    /// Print one JSON object instead of a sentence, for scripts.
    #[arg(long)]
    pub json: bool,
}

pub async fn fail(path: &Path, a: FailArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let (mut st, mut loaded, phase, ids) = read_for_change(path, &a.node).await?;
    let w = &mut loaded.world;
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
    if a.json {
        let lost: Vec<&str> = crashed.lost.iter().map(|k| &**k).collect();
        print_json(
            out,
            &json!({ "node": crashed.node, "entries": crashed.entries, "lost": lost }),
        )?;
    } else {
        writeln!(out, "{}", members::crashed(&crashed, true))?;
    }
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
    /// Print one JSON object instead of a sentence, for scripts.
    #[arg(long)]
    pub json: bool,
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
    if a.json {
        print_json(
            out,
            &json!({ "rounds": rounds, "stable": clean, "unsettled": unsettled }),
        )?;
        return Ok(ExitCode::SUCCESS);
    }
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
pub struct CheckArgs {
    /// Save what can be saved from a damaged state file and write it back:
    /// a node whose routing state is damaged is rebuilt (maintenance then
    /// restores its pointers and replicas); a slice row that is damaged is
    /// dropped, and with it every key stored there (each key keeps all its
    /// copies in its slice's row). Damaged settings cannot be repaired.
    #[arg(long)]
    pub repair: bool,
    /// Print one JSON object (ok, nodes, physical nodes, replicas,
    /// problems) instead of lines, for scripts.
    #[arg(long, conflicts_with = "repair")]
    pub json: bool,
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
    if a.json {
        print_json(
            out,
            &json!({
                "ok": problems.is_empty(),
                "nodes": w.len(),
                "physical_nodes": hosts,
                "replicas": w.params().replicas,
                "problems": problems,
            }),
        )?;
    } else {
        output::check(out, &problems, w.len(), w.params().replicas, hosts)?;
    }
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
