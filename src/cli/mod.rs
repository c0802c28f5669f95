//! Command-line definitions (clap derive: the `///` comments are the help)
//! and dispatch. Commands only parse, call the library and print.

mod compact;
mod data;
mod load;
mod members;
mod progress;
mod ring;
mod share;
mod sim;

use clap::{Args, CommandFactory, Parser, Subcommand};
use dht::state::{Access, Reading, Scope, State};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

/// A Chord distributed hash table, simulated in one process and kept between
/// commands in a state file.
#[derive(Debug, Parser)]
#[command(
    name = "dht",
    version,
    propagate_version = true,
    after_help = "\
Examples:
  dht load --source sql --table items     load the shipped SQLite table into a new 8-node ring
  dht get apple --path                    read a key and show the lookup path
  dht dump --format csv > ring.csv        every key, value and responsible node
  dht fail node-3 && dht maintain --until-stable && dht check"
)]
pub struct Cli {
    /// The ring's state file (SQLite).
    #[arg(
        long,
        global = true,
        env = "DHT_STATE",
        default_value = ".dht/ring.db",
        value_name = "PATH"
    )]
    pub state: PathBuf,
    /// Build the whole ring in memory before a get, put, delete or `ring`,
    /// instead of reading only the nodes a command reaches (or, for the
    /// listing of `ring`, one node row at a time): the same answers, at the
    /// cost of the whole ring (for comparison).
    #[arg(long, global = true)]
    pub whole_ring: bool,
    /// More log output on stderr (-v, -vv, -vvv); RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the largest variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a ring of nodes.
    #[command(after_help = "\
Examples:
  dht init --nodes 16
  dht init --bits 6 --ids 1,8,14,21,32,38,42,48,51,56     the paper's ring (Stoica et al., Fig. 3)
  dht init --nodes 100000 --force                         large rings are built directly, converged")]
    Init(members::InitArgs),
    /// Load records from a CSV, TSV, Parquet, Arrow IPC, JSON or NDJSON
    /// file, a spreadsheet (xlsx, xls, ods), a table of SQLite, PostgreSQL,
    /// MySQL/MariaDB or SQL Server, or a JSON object into the ring, creating
    /// the ring if there is none.
    #[command(after_help = "\
Examples:
  dht load --source sql --table items                      the SQLite database shipped in data/
  dht load --source csv --path data/items.csv
  dht load --source parquet --path data/items.parquet --key-col sku --value-col price
  dht load --source json --path data/items.json            a JSON object: each member is a key
  dht load --source ndjson --path data/items.ndjson --key-col sku   the rest of each row is the value
  dht load --path book.xlsx --sheet Prices --key-col name  one sheet of a workbook
  dht load --path export.csv.gz --delimiter ';' --null-value NA
  dht load --source sql --url mssql://sa@db:1433/Northwind --table 'Order Details' --key-col OrderID
  psql -c \"COPY items TO STDOUT CSV HEADER\" | dht load --source csv --path -")]
    Load(load::LoadArgs),
    /// Print every stored key and value with the node responsible for it.
    #[command(after_help = "\
Examples:
  dht dump
  dht dump --format json --replicas      every copy, and where it lives
  dht dump --format csv > ring.csv")]
    Dump(data::DumpArgs),
    /// Read one key (exit status 1 when it is missing).
    #[command(after_help = "\
Examples:
  dht get apple
  dht get apple --path --from node-2     the nodes the lookup visited
  dht get apple --json")]
    Get(data::GetArgs),
    /// Store one key. The value is taken as JSON when it parses, else as text.
    #[command(after_help = "\
Examples:
  dht put apple '{\"color\": \"red\"}'
  dht put count 42
  dht put greeting hello              stored as the text \"hello\"
  dht put zip 01234 --text            stored as text, not the number")]
    Put(data::PutArgs),
    /// Delete one key (exit status 1 when it is missing).
    #[command(after_help = "Example:\n  dht delete apple")]
    Delete(data::DeleteArgs),
    /// Add nodes; run `dht maintain` to link them in.
    #[command(after_help = "\
Examples:
  dht join                  one node with the next free name
  dht join alice
  dht join --count 10")]
    Join(members::JoinArgs),
    /// Remove a node gracefully: its keys move to its successor first.
    #[command(after_help = "Example:\n  dht leave node-3")]
    Leave(members::NodeArgs),
    /// Crash a node: it vanishes with its data; replicas recover it.
    #[command(after_help = "\
Examples:
  dht fail node-3
  dht fail node-3 --force      even if a neighbour would be left with no live successor")]
    Fail(members::FailArgs),
    /// Run maintenance rounds: every node stabilizes, fixes a finger, checks
    /// its predecessor and restores replicas.
    #[command(after_help = "\
Examples:
  dht maintain
  dht maintain --rounds 5
  dht maintain --until-stable")]
    Maintain(members::MaintainArgs),
    /// Show the nodes in ring order with their pointers and key counts.
    #[command(after_help = "\
Examples:
  dht ring
  dht ring --fingers")]
    Ring(ring::RingArgs),
    /// Check the ring's invariants and replication; exit status 1 when
    /// something is wrong.
    #[command(after_help = "\
Examples:
  dht check
  dht check --repair      after check reports damage: save what can be saved")]
    Check(members::CheckArgs),
    /// Rewrite the state file compactly: give back the space of deleted
    /// keys and departed nodes, and rewrite a file made by an older dht
    /// (64 KiB pages) in 16 KiB pages, which make a served put write a
    /// quarter of the bytes. Needs the file alone: stop `dht serve` first.
    #[command(after_help = "\
Examples:
  dht compact
  dht compact --json      {\"bytes_before\":..., \"bytes_after\":..., ...}")]
    Compact(compact::CompactArgs),
    /// Serve the ring to many people over an HTTP/JSON API under /api/v1/
    /// (reads from memory, writes committed to the state file before the
    /// answer; `dht` commands may run on the same file meanwhile).
    #[command(after_help = "\
Examples:
  dht user add alice --role admin          prints alice's token
  dht serve                                 http://127.0.0.1:8080/api/v1/
  curl -H \"Authorization: Bearer $TOKEN\" http://127.0.0.1:8080/api/v1/keys/apple
  dht serve --bind 0.0.0.0:8080 --insecure-http    on a trusted network")]
    Serve(share::ServeArgs),
    /// Run the Chord papers' experiments on the real protocol code and
    /// print each figure beside the published numbers (no state file is
    /// read or written).
    #[command(subcommand)]
    Sim(sim::Experiment),
    /// Manage the accounts of a served ring.
    #[command(subcommand)]
    User(share::UserCommand),
    /// Show who changed what, newest first.
    #[command(after_help = "Examples:\n  dht log\n  dht log --limit 100 --json")]
    Log(share::LogArgs),
    /// Print a shell completion script.
    #[command(after_help = "\
Examples:
  dht completions bash > ~/.local/share/bash-completion/completions/dht
  dht completions zsh > ~/.zfunc/_dht          (with fpath+=(~/.zfunc) in .zshrc)
  dht completions fish > ~/.config/fish/completions/dht.fish")]
    Completions(CompletionsArgs),
    /// Print the manual page (roff) for dht and every command.
    #[command(after_help = "Example:\n  dht man > dht.1 && man ./dht.1")]
    Man,
}

/// Arguments of `dht completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Settings for a ring that does not exist yet.
#[derive(Debug, Args, Clone)]
pub struct NewRing {
    /// Replication factor r: each key lives on r nodes.
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u8).range(1..=32))]
    pub replicas: u8,
    /// Identifier width m in bits (1 to 160); small widths make teaching rings.
    #[arg(long, default_value_t = 160, value_parser = clap::value_parser!(u32).range(1..=160))]
    pub bits: u32,
    /// Seed of every random choice (start nodes, maintenance order).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Virtual nodes per physical node (the paper's remedy for uneven
    /// load): each node NAME runs V Chord nodes at the hashes of NAME#0 …
    /// NAME#V-1; join, leave and fail act on all of them, and a key's r
    /// copies live on r distinct physical nodes.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u8).range(1..=64))]
    pub vnodes: u8,
}

impl NewRing {
    /// The ring settings these flags ask for.
    pub fn params(&self) -> anyhow::Result<dht::chord::Params> {
        let bits = dht::chord::Bits::new(self.bits)?;
        Ok(dht::chord::Params::of(bits, self.replicas).with_vnodes(self.vnodes))
    }
}

/// Runs one command, writing its output to `out`.
pub async fn run(cli: Cli, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let state = cli.state.as_path();
    let reading = if cli.whole_ring {
        Reading::Whole
    } else {
        Reading::OnDemand
    };
    match cli.command {
        Command::Init(a) => members::init(state, a, out).await,
        Command::Load(a) => load::run(state, a, out).await,
        Command::Dump(a) => data::dump(state, a, out).await,
        Command::Get(a) => data::get(state, reading, a, out).await,
        Command::Put(a) => data::put(state, reading, a, out).await,
        Command::Delete(a) => data::delete(state, reading, a, out).await,
        Command::Join(a) => members::join(state, a, out).await,
        Command::Leave(a) => members::leave(state, a, out).await,
        Command::Fail(a) => members::fail(state, a, out).await,
        Command::Maintain(a) => members::maintain(state, a, out).await,
        Command::Ring(a) => ring::show(state, reading, a, out).await,
        Command::Check(a) => members::check(state, a, out).await,
        Command::Compact(a) => compact::run(state, a, out).await,
        Command::Serve(a) => share::serve(state, a, out).await,
        Command::Sim(e) => sim::run(e, out),
        Command::User(c) => share::user(state, c, out).await,
        Command::Log(a) => share::log(state, a, out).await,
        Command::Completions(a) => {
            let mut cmd = Cli::command();
            clap_complete::generate(a.shell, &mut cmd, "dht", out);
            Ok(ExitCode::SUCCESS)
        }
        Command::Man => {
            clap_mangen::Man::new(Cli::command()).render(out)?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Opens the state and loads the ring with the entries `scope` asks for.
async fn open(
    path: &Path,
    access: Access,
    scope: Scope,
) -> anyhow::Result<(State, dht::state::Loaded)> {
    let mut st = State::open(path, access).await?;
    let loaded = st.load(scope).await?;
    Ok((st, loaded))
}

/// Resolves a node name given on the command line; an unknown name is
/// answered with the first few names in ring order.
fn node_named(world: &mut dht::sim::World, name: &str) -> anyhow::Result<dht::chord::NodeId> {
    let e = match world.named(name) {
        Ok(id) => return Ok(id),
        Err(e @ dht::sim::WorldError::NoSuchNode(_)) => e,
        Err(other) => return Err(other.into()),
    };
    Err(with_names(world, e)?)
}

/// The nodes of the physical node `name` (one node, on a ring without
/// virtual nodes), or an error listing the first few physical nodes; on a
/// ring read on demand, reading what it needs.
fn host_named(world: &mut dht::sim::World, name: &str) -> anyhow::Result<Vec<dht::chord::NodeId>> {
    match world.physical_named(name) {
        Ok(ids) => Ok(ids),
        Err(e @ dht::sim::WorldError::NoSuchNode(_)) => Err(with_hosts(world, e)?),
        Err(other) => Err(other.into()),
    }
}

/// `e` with the first few names of the ring, read by rank.
fn with_names(
    world: &mut dht::sim::World,
    e: dht::sim::WorldError,
) -> anyhow::Result<anyhow::Error> {
    let mut names = Vec::new();
    for i in 0..world.len().min(8) {
        let id = world.member_at(i)?;
        names.push(world.name(id));
    }
    Ok(naming_some(e, &names, world.len() > names.len()))
}

/// `value` as one line of JSON, for scripts.
fn print_json(out: &mut impl Write, value: &impl serde::Serialize) -> anyhow::Result<()> {
    serde_json::to_writer(&mut *out, value)?;
    writeln!(out)?;
    Ok(())
}

/// `e` with the first few physical nodes of the ring in the ring order of
/// their first node (as [`dht::sim::World::host_names`] lists them), read
/// by rank.
fn with_hosts(
    world: &mut dht::sim::World,
    e: dht::sim::WorldError,
) -> anyhow::Result<anyhow::Error> {
    let mut hosts: Vec<String> = Vec::new();
    for i in 0..world.len() {
        let id = world.member_at(i)?;
        let host = world.host_name(id);
        if !hosts.contains(&host) {
            if hosts.len() == 8 {
                return Ok(naming_some(e, &hosts, true));
            }
            hosts.push(host);
        }
    }
    Ok(naming_some(e, &hosts, false))
}

/// `e`, then the names `shown` of the ring's nodes, and "..." if it has
/// `more`.
fn naming_some(e: dht::sim::WorldError, shown: &[String], more: bool) -> anyhow::Error {
    let more = if more { ", ..." } else { "" };
    anyhow::anyhow!(
        "{e} (the ring's nodes: {}{more}; `dht ring` lists them)",
        shown.join(", ")
    )
}

/// Set once a command has committed its change to the state file: from then
/// on a failure to write its report must not be mistaken for a failed
/// command (see [`committed`]).
static COMMITTED: AtomicBool = AtomicBool::new(false);

/// Logs the command's change (see [`State::log_change`]), as `cli:USER`,
/// commits its transaction and remembers that it did.
async fn commit(mut st: State, op: &str, target: &str, detail: &str) -> anyhow::Result<()> {
    st.log_change(&cli_author(), op, target, detail).await?;
    st.commit().await?;
    COMMITTED.store(true, Ordering::SeqCst);
    Ok(())
}

/// Who the change log names for a command-line change: `cli:` and the
/// login name.
fn cli_author() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".into());
    format!("cli:{user}")
}

/// True when this process committed a change: an error after that is about
/// the report, not the change.
pub fn committed() -> bool {
    COMMITTED.load(Ordering::SeqCst)
}

/// A note for the user on stderr, prefixed `dht: `. A stderr that cannot be
/// written to (closed, full) loses the note rather than crashing the
/// command.
pub fn note(message: &str) {
    let _ = writeln!(std::io::stderr(), "dht: {message}");
}
