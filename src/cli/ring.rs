//! Commands that change or show membership: init, join, leave, fail,
//! maintain, ring, check.

use super::{NewRing, node_named, open, show_node};
use anyhow::{Context, bail};
use clap::Args;
use dht::chord::{Bits, Id, Params};
use dht::sim::World;
use dht::state::{Access, Scope, State, StateError};
use std::path::Path;
use std::process::ExitCode;

/// Rings up to this size are built through the join protocol; larger ones
/// are computed converged directly (same result, without N² messages).
pub const PROTOCOL_BUILD_LIMIT: usize = 256;

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Number of nodes, named node-0, node-1, ...
    #[arg(long, default_value_t = 8, conflicts_with = "ids")]
    pub nodes: usize,
    /// Place nodes at these ids instead (named N<id>), e.g. the paper's
    /// 1,8,14,21,32,38,42,48,51,56 with --bits 6.
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
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

/// Node names and optional explicit ids for a new ring.
pub fn planned_nodes(
    bits: Bits,
    count: usize,
    ids: &[String],
) -> anyhow::Result<Vec<(String, Option<Id>)>> {
    if ids.is_empty() {
        if count == 0 {
            bail!("a ring needs at least one node (--nodes)");
        }
        return Ok((0..count).map(|i| (format!("node-{i}"), None)).collect());
    }
    ids.iter()
        .map(|s| {
            let id = bits
                .parse_id(s)
                .with_context(|| format!("--ids: {s:?} is not an id that fits in {bits} bits"))?;
            Ok((format!("N{}", s.trim()), Some(id)))
        })
        .collect()
}

/// Builds a ring: one node, the others joining through it with a maintenance
/// round after each, then rounds until every invariant holds; or, above the
/// limit (or with `bulk`), directly in its converged state.
pub fn build_ring(
    params: Params,
    seed: u64,
    nodes: Vec<(String, Option<Id>)>,
    bulk: bool,
) -> anyhow::Result<(World, Option<usize>)> {
    if bulk {
        return Ok((World::bulk(params, seed, nodes)?, None));
    }
    let mut w = World::new(params, seed);
    let mut first = None;
    for (name, id) in nodes {
        let (n, _) = w.join(&name, id, first)?;
        first.get_or_insert(n);
        w.round();
    }
    let rounds = w.converge(500).context("the new ring did not converge")?;
    Ok((w, Some(rounds)))
}

pub async fn init(path: &Path, a: InitArgs) -> anyhow::Result<ExitCode> {
    let bits = Bits::new(a.ring.bits)?;
    let params = Params {
        bits,
        replicas: a.ring.replicas,
    };
    let nodes = planned_nodes(bits, a.nodes, &a.ids)?;
    let n = nodes.len();
    let bulk = a.bulk || (!a.protocol && n > PROTOCOL_BUILD_LIMIT);
    let mut st = State::open(path, Access::Create).await?;
    if st.has_ring().await? && !a.force {
        return Err(StateError::Exists(path.to_path_buf()).into());
    }
    let (mut world, rounds) = build_ring(params, a.ring.seed, nodes, bulk)?;
    st.create(params, world.counters()).await?;
    world.set_journaling(true);
    let mut loaded = dht::state::Loaded::fresh(world);
    st.save(&mut loaded).await?;
    st.commit().await?;
    match rounds {
        Some(r) => println!(
            "created a ring of {n} nodes (r={}, m={}, seed={}) through the join protocol; converged after {r} maintenance rounds",
            a.ring.replicas, a.ring.bits, a.ring.seed
        ),
        None => println!(
            "created a ring of {n} nodes (r={}, m={}, seed={}) in its converged state (bulk build)",
            a.ring.replicas, a.ring.bits, a.ring.seed
        ),
    }
    println!("state: {}", path.display());
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct JoinArgs {
    /// Name of the new node (default: the next free node-<i>).
    pub name: Option<String>,
    /// Add this many nodes (named node-<i>).
    #[arg(long, default_value_t = 1, conflicts_with = "name")]
    pub count: usize,
    /// Join through this node (default: one chosen by the seed).
    #[arg(long, value_name = "NODE")]
    pub via: Option<String>,
}

pub async fn join(path: &Path, a: JoinArgs) -> anyhow::Result<ExitCode> {
    let (mut st, mut loaded) = open(path, Access::Write, Scope::All).await?;
    let w = &mut loaded.world;
    let via = a.via.as_deref().map(|v| node_named(w, v)).transpose()?;
    let names: Vec<String> = match a.name {
        Some(n) => vec![n],
        None => {
            let mut out = Vec::new();
            let mut i = 0;
            while out.len() < a.count {
                let name = format!("node-{i}");
                if w.find(&name).is_err() {
                    out.push(name);
                }
                i += 1;
            }
            out
        }
    };
    for name in names {
        let (id, lookup) = w.join(&name, None, via)?;
        let succ = lookup
            .map(|l| show_node(w, l.successor))
            .unwrap_or_else(|| "itself".into());
        println!("joined {}; successor {succ}", show_node(w, id));
    }
    st.save(&mut loaded).await?;
    st.commit().await?;
    eprintln!("run `dht maintain` to link the new nodes into the ring");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct NodeArgs {
    /// The node's name, as `dht ring` lists it.
    pub node: String,
}

pub async fn leave(path: &Path, a: NodeArgs) -> anyhow::Result<ExitCode> {
    let (mut st, mut loaded) = open(path, Access::Write, Scope::All).await?;
    let w = &mut loaded.world;
    let id = node_named(w, &a.node)?;
    let keys = w.node(id).map(|n| n.store.len()).unwrap_or(0);
    let shown = show_node(w, id);
    w.leave(id)
        .with_context(|| format!("{shown} cannot leave"))?;
    st.save(&mut loaded).await?;
    st.commit().await?;
    println!("{shown} left; its {keys} stored entries were handed over");
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

pub async fn fail(path: &Path, a: FailArgs) -> anyhow::Result<ExitCode> {
    let (mut st, mut loaded) = open(path, Access::Write, Scope::All).await?;
    let w = &mut loaded.world;
    let id = node_named(w, &a.node)?;
    let lost = w.sole_copies(id);
    if lost > 0 && !a.force {
        bail!(
            "{} holds the only live copy of {lost} keys; crashing it now loses them (run `dht maintain` so replicas catch up, or pass --force)",
            show_node(w, id)
        );
    }
    if !a.force
        && let Some(victim) = w.would_isolate(id)
    {
        bail!(
            "crashing {} would leave {} with no live successor; run `dht maintain` first, or pass --force",
            show_node(w, id),
            show_node(w, victim)
        );
    }
    if w.len() == 1 && !a.force {
        bail!(
            "{} is the last node: crashing it loses every key; pass --force to do it anyway",
            show_node(w, id)
        );
    }
    let shown = show_node(w, id);
    let node = w.fail(id)?;
    st.save(&mut loaded).await?;
    st.commit().await?;
    println!(
        "{shown} crashed, taking {} stored entries with it; replicas remain elsewhere",
        node.store.len()
    );
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

pub async fn maintain(path: &Path, a: MaintainArgs) -> anyhow::Result<ExitCode> {
    let (mut st, mut loaded) = open(path, Access::Write, Scope::All).await?;
    let w = &mut loaded.world;
    let (rounds, clean) = if a.until_stable {
        match w.converge(500) {
            Ok(r) => (r, true),
            Err(e) => {
                eprintln!("dht: {e}");
                (500, false)
            }
        }
    } else {
        let mut messages = 0;
        for _ in 0..a.rounds {
            messages += w.round().messages;
        }
        tracing::info!(messages, "maintenance done");
        (a.rounds, w.check().is_empty())
    };
    st.save(&mut loaded).await?;
    st.commit().await?;
    println!(
        "ran {rounds} maintenance rounds; ring {}",
        if clean {
            "is stable"
        } else {
            "is still settling (run `dht check`)"
        }
    );
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct RingArgs {
    /// Also list each node's distinct fingers.
    #[arg(long)]
    pub fingers: bool,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub async fn show(path: &Path, a: RingArgs) -> anyhow::Result<ExitCode> {
    let mut st = State::open(path, Access::Read).await?;
    let loaded = st.load(Scope::Routing).await?;
    let counts = st.key_counts().await?;
    let w = &loaded.world;
    let bits = w.bits();
    let mut rows = Vec::new();
    for n in w.nodes() {
        let name = w.name(n.id);
        let held = counts.get(&name).map(Vec::as_slice).unwrap_or(&[]);
        let own = held.iter().filter(|k| n.responsible_for(**k)).count();
        rows.push(serde_json::json!({
            "node": name,
            "id": bits.show(n.id.id()),
            "predecessor": n.pred.map(|p| w.name(p)),
            "successors": n.succs.iter().map(|s| w.name(*s)).collect::<Vec<_>>(),
            "keys": own,
            "replicas": held.len() - own,
            "fingers": n.fingers.runs().iter().map(|(i, f)| serde_json::json!({"from": i, "node": w.name(*f)})).collect::<Vec<_>>(),
        }));
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(ExitCode::SUCCESS);
    }
    let mut table = crate::output::Table::new(&[
        "NODE",
        "ID",
        "PREDECESSOR",
        "SUCCESSORS",
        "KEYS",
        "REPLICAS",
    ]);
    for r in &rows {
        let s = |k: &str| r[k].as_str().unwrap_or("-").to_owned();
        let succs: Vec<&str> = r["successors"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str())
            .collect();
        table.row(vec![
            s("node"),
            s("id"),
            s("predecessor"),
            succs.join(" "),
            r["keys"].to_string(),
            r["replicas"].to_string(),
        ]);
    }
    table.print()?;
    if a.fingers {
        println!();
        for r in &rows {
            let f: Vec<String> = r["fingers"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|x| format!("{}+:{}", x["from"], x["node"].as_str().unwrap_or("?")))
                .collect();
            println!(
                "{} fingers  {}",
                r["node"].as_str().unwrap_or("?"),
                f.join("  ")
            );
        }
    }
    println!("{} nodes, r={}, m={}", w.len(), w.params().replicas, bits);
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct CheckArgs {}

pub async fn check(path: &Path, _a: CheckArgs) -> anyhow::Result<ExitCode> {
    let mut st = State::open(path, Access::Read).await?;
    let loaded = st.load(Scope::All).await?;
    let w = &loaded.world;
    let problems = w.check();
    if problems.is_empty() {
        println!(
            "ok: one ordered ring of {} nodes; every pointer is where it should be; every key is on its {} nodes",
            w.len(),
            w.params().replicas
        );
        return Ok(ExitCode::SUCCESS);
    }
    for p in &problems {
        println!("{}", w.describe(p));
    }
    println!(
        "{} problems; `dht maintain --until-stable` repairs what maintenance can",
        problems.len()
    );
    Ok(ExitCode::from(1))
}
