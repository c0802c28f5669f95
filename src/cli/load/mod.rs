//! `dht load`: read the source's records (a bad row stops the load and
//! nothing is stored, unless --skip-bad-rows), create the ring if there is
//! none, insert each record through a Chord lookup with maintenance every K
//! records ([`dht::app::load`]), write the ring back in one transaction,
//! then show what the ring stores and a summary. A source larger than
//! --part-size (a CSV file, a database table, a DataFrame's rows) is read
//! and stored part by part, the parts' copies kept on disk rather than in
//! memory ([`Spill`]), still in one transaction.

mod args;
mod feed;

pub use args::LoadArgs;

use super::{commit, note};
use crate::output::{self, Format, Listed, LoadSummary};
use dht::app::build;
use dht::app::load::{self as loading, LoadPlan};
use dht::source::Record;
use dht::state::{Access, Loaded, Scope, Spill, State};
use feed::Feed;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// A spinner on stderr saying what is being written.
fn writing(state: &Path) -> ProgressBar {
    let saving = ProgressBar::new_spinner();
    saving.set_message(format!("writing the ring to {}", state.display()));
    saving.enable_steady_tick(std::time::Duration::from_millis(120));
    saving
}

/// What a load routed and what the ring holds afterwards.
struct Outcome {
    routed: loading::Routed,
    sample: Vec<Listed>,
    keys_stored: usize,
    route_secs: f64,
}

/// Loads a source that is one part: routed in memory, written in one save,
/// the listing taken from memory.
async fn load_whole(
    st: &mut State,
    loaded: &mut Loaded,
    records: Vec<Record>,
    plan: LoadPlan,
    a: &LoadArgs,
) -> anyhow::Result<Outcome> {
    let route_start = Instant::now();
    let bar = ProgressBar::new(records.len() as u64);
    bar.set_style(
        ProgressStyle::with_template("routing {human_pos}/{human_len} [{bar:30}] eta {eta}")
            .expect("template")
            .progress_chars("=> "),
    );
    let routed = loading::route_records(&mut loaded.world, records, plan, |n| bar.set_position(n))?;
    bar.finish_and_clear();
    let route_secs = route_start.elapsed().as_secs_f64();
    // What to show, gathered before the world goes to the state file.
    let (sample, keys_stored) = loading::stored_sample(&loaded.world, a.show);
    let sample = sample
        .into_iter()
        .map(|e| Listed {
            key: e.key,
            value: e.value,
            node: e.node,
            node_id: e.node_id,
            role: None,
        })
        .collect();
    st.save(loaded).await?;
    // Keys once lost that this load wrote again are no longer lost.
    st.forget_lost_held_again(loaded.world.bits()).await?;
    Ok(Outcome {
        routed,
        sample,
        keys_stored,
        route_secs,
    })
}

/// Loads a source of several parts without holding it in memory: after
/// each part its copies move to spill files ([`Spill`]), merged into the
/// state file at the end; the listing is read back from the file.
async fn load_in_parts(
    st: &mut State,
    loaded: &mut Loaded,
    feed: &mut Feed<'_>,
    first: Vec<Record>,
    plan: LoadPlan,
    state: &Path,
) -> anyhow::Result<Outcome> {
    let spilling = |e: std::io::Error| {
        anyhow::anyhow!(
            "writing the load's spill files beside {}: {e}",
            state.display()
        )
    };
    // Copies name their holders by row id: a new ring's nodes go in first.
    st.save(loaded).await?;
    let mut spill = Spill::new(state, loaded).map_err(spilling)?;
    let mut routing = loading::Routing::new(plan);
    routing.spilled();
    let (route_start, read_before) = (Instant::now(), feed.secs);
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner} routing {human_pos} records ({elapsed})")
            .expect("template"),
    );
    bar.enable_steady_tick(std::time::Duration::from_millis(250));
    // A part's copies leave memory before the next part is read; the
    // last part's stay for the final round's replica upkeep.
    let mut part = first;
    loop {
        routing.route(&mut loaded.world, part, |n| bar.set_position(n))?;
        if !feed.more() {
            break;
        }
        loaded.spill(&mut spill).map_err(spilling)?;
        match feed.next().await? {
            Some(next) => part = next,
            None => break,
        }
    }
    let routed = routing.finish(&mut loaded.world);
    loaded.spill(&mut spill).map_err(spilling)?;
    bar.finish_and_clear();
    let route_secs = route_start.elapsed().as_secs_f64() - (feed.secs - read_before);
    // Keys held before the load and not written by it are still in memory.
    let (_, untouched) = loading::stored_sample(&loaded.world, 0);
    let saving = writing(state);
    st.save(loaded).await?;
    saving.finish_and_clear();
    let merging = ProgressBar::new(Spill::FILES as u64);
    merging.set_style(
        ProgressStyle::with_template(
            "merging the load's copies into the state file [{bar:30}] {pos}/{len} ({elapsed})",
        )
        .expect("template")
        .progress_chars("=> "),
    );
    let merged = st
        .merge_spill(spill, |done| merging.set_position(done as u64))
        .await?;
    merging.finish_and_clear();
    let saving = writing(state);
    let routed = loading::Routing::settle(routed, plan.fresh_ring, merged.keys, merged.rewrites);
    st.forget_lost_held_again(loaded.world.bits()).await?;
    let sample = st
        .first_keys(loaded, feed.a.show)
        .await?
        .into_iter()
        .map(|(key, value, node)| Listed {
            key: key.text,
            value,
            node: loaded.world.name(node).into(),
            node_id: loaded.world.bits().show(node.id()),
            role: None,
        })
        .collect();
    saving.finish_and_clear();
    Ok(Outcome {
        routed,
        sample,
        keys_stored: untouched + merged.keys as usize,
        route_secs,
    })
}

pub async fn run(state: &Path, a: LoadArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    // The first part is read before the state is touched: a source that
    // cannot be read changes nothing and takes no lock. A later part's
    // error rolls the whole load back.
    let mut feed = Feed::new(&a)?;
    let first = feed.next().await?.unwrap_or_default();

    let mut st = State::open(state, Access::Create).await?;
    let mut created = None;
    let mut loaded = if st.has_ring().await? {
        if a.nodes.is_some() {
            note("the ring exists already; --nodes applies only to a new ring");
        }
        st.load(Scope::All).await?
    } else {
        let params = a.ring.params()?;
        let n = a.nodes.unwrap_or(8);
        let nodes = build::planned_nodes(params, n, &[])?;
        let (world, _) =
            build::build_ring(params, a.ring.seed, nodes, build::use_bulk(n, false, false))?;
        st.create(params, world.counters()).await?;
        created = Some(n);
        Loaded::fresh(world)
    };
    let plan = LoadPlan {
        maintain_every: a.maintain_every,
        fresh_ring: created.is_some(),
    };

    let persist_start = Instant::now();
    let done = if feed.more() {
        load_in_parts(&mut st, &mut loaded, &mut feed, first, plan, state).await?
    } else {
        load_whole(&mut st, &mut loaded, first, plan, &a).await?
    };
    let saving = writing(state);
    commit(
        st,
        "load",
        "",
        &format!("{} records", done.routed.records()),
    )
    .await?;
    saving.finish_and_clear();
    // The process ends right after: freeing millions of entries one by one
    // would only add seconds before the exit frees them at once.
    let nodes = loaded.world.len();
    let loaded_params = loaded.world.params();
    std::mem::forget(loaded);
    let persist_secs = (persist_start.elapsed().as_secs_f64() - done.route_secs).max(0.0);
    let done_route_secs = done.route_secs;
    let routed = done.routed;
    let read_secs = feed.secs;
    let keys_stored = done.keys_stored;
    let records = routed.records();
    let rejected = feed.skipped;

    let summary = LoadSummary {
        records_read: records + rejected as u64,
        routed,
        rejected,
        nodes,
        ring_created: created.is_some(),
        keys_stored,
        parts: feed.parts,
        seconds: [read_secs, done_route_secs, persist_secs],
    };
    if a.json {
        output::load_summary(out, &summary, true)?;
        return Ok(ExitCode::SUCCESS);
    }
    if let Some(n) = created {
        let size = build::size_in_words(loaded_params, n);
        writeln!(out, "created a ring of {size} at {}", state.display())?;
    }
    if !done.sample.is_empty() {
        let listing = done.sample;
        output::entries(out, Format::Table, &listing)?;
        if keys_stored > listing.len() {
            writeln!(
                out,
                "... and {} more keys (`dht dump` lists them all)",
                keys_stored - listing.len()
            )?;
        }
        writeln!(out)?;
    }
    output::load_summary(out, &summary, false)?;
    Ok(ExitCode::SUCCESS)
}
