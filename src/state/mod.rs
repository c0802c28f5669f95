//! The persistent ring: one SQLite database (via sqlx) holding the ring's
//! settings, every node's routing state, and every node's stored entries,
//! replicas included.
//!
//! Entries are stored by slice of the ring (see [`slice`]): one row per
//! slice, holding every copy of every key in it, whichever nodes hold them,
//! each distinct write written once with the row ids of its holders. A `get`
//! reads the one row of its slice.
//!
//! Each command opens it ([`open`](State::open)), reads what it needs
//! ([`load`](State::load) reads every node, and the slices asked for;
//! [`on_demand`](State::on_demand) only the nodes a `get`, `put` or `delete`
//! reaches, and its key's slice), runs, and writes its changes back
//! ([`save`](State::save)) in one transaction. Writers take SQLite's write
//! lock up front (`BEGIN IMMEDIATE`), so two processes changing the same ring
//! serialize instead of losing each other's writes, and WAL mode gives
//! readers a consistent snapshot: nobody sees half a command. A command that
//! fails or is killed commits nothing.
//!
//! A file that is not ours, is from a newer format, or is damaged is refused
//! with an error that says so; it is never overwritten. Older formats are
//! rewritten in this one when opened ([`upgrade`]).
//!
//! Files: `open.rs` (opening, format checks, metadata, commit, a write
//! connection kept between transactions), `upgrade.rs`
//! (older formats), `load.rs` and `save.rs` (the ring in and out),
//! `demand.rs` (a command run on the nodes it reaches, read as it reaches
//! them), `census.rs` (members per slice, to find a member by rank),
//! `users.rs` (accounts of a served ring), `log.rs` (who changed what),
//! `listing.rs` (streaming reads for `dump` and `ring`), `slice.rs` (slices
//! and their batches), `codec.rs` (the binary forms of rows).

mod census;
pub mod codec;
mod commit_mark;
mod compact;
mod demand;
mod listing;
mod load;
mod log;
mod lost;
mod open;
mod salvage;
mod save;
pub mod slice;
mod spill;
mod upgrade;
mod users;
mod watch;

pub use compact::{Compacted, compact};
pub use demand::Reading;
pub use listing::StoredCopy;
pub use log::{Change, LOG_LIMIT, LogEntry};
pub use lost::LostKey;
pub use open::Idle;
pub use salvage::Salvage;
pub use slice::{SLICE_BITS, slice_of};
pub use spill::{Merged, Spill};
pub use users::{Role, User, UserError, token_hash};
pub use watch::{Watch, log_size};

use crate::chord::store::{Key, Versioned};
use crate::chord::{Id, NodeId};
use crate::sim::World;
use sqlx::SqliteConnection;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

/// The format this build writes and reads. Files of format 1 (an entry per
/// row), 2 (a row per node and slice, each copy written out), 3 (a row per
/// slice of 1/4,096 of the ring, each write once), 4 (format 3 with every
/// blob and the settings sealed by a checksum) and 5 (format 4 with the
/// census of members per 1/4,096 of the ring in the settings) are upgraded
/// to 6 (format 5 with slices of 1/65,536 of the ring) when opened.
pub const FORMAT_VERSION: u32 = 6;
/// What the `format` metadata of every dht state file says.
const FORMAT_NAME: &str = "dht-ring-state";

/// Why the state could not be used. Every variant leaves the file as it was.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// No state file, or one without a ring yet.
    #[error("no ring at {0}: create one with `dht init` or `dht load`")]
    NoRing(PathBuf),
    /// `init` over an existing ring without `--force`.
    #[error("a ring already exists at {0}; pass --force to replace it")]
    Exists(PathBuf),
    /// The file is some other program's data.
    #[error(
        "{0} is not a dht state file (no dht metadata in it); refusing to touch it: choose another --state path"
    )]
    NotOurs(PathBuf),
    /// A later dht wrote it.
    #[error(
        "{path} was written by a newer dht (state format {found}, this build reads {FORMAT_VERSION}); upgrade dht"
    )]
    NewerFormat {
        /// The file.
        path: PathBuf,
        /// Its format version.
        found: u32,
    },
    /// Parts of it do not decode.
    #[error(
        "{path} is damaged: {what}; restore it from a copy or start again with `dht init --force`"
    )]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        what: String,
    },
    /// Another process held the write lock for too long.
    #[error("{0} is busy: another dht command held it for more than 30 s")]
    Busy(PathBuf),
    /// Another connection has the file open and the operation needs it
    /// alone.
    #[error(
        "{0} is open in another dht command or a server; `dht compact` needs it alone: stop them and try again"
    )]
    InUse(PathBuf),
    /// The path is a directory.
    #[error("{0} is a directory; --state names the state file (default .dht/ring.db)")]
    IsDirectory(PathBuf),
    /// The database itself failed. The driver's error is shown once, its
    /// innermost words only (not as a chain that repeats them).
    #[error("state database {path}: {}", driver_message(cause))]
    Sql {
        /// The file.
        path: PathBuf,
        /// The driver's error.
        cause: sqlx::Error,
    },
}

/// How a command uses the state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads only, from a consistent snapshot.
    Read,
    /// Reads and writes an existing state file.
    Write,
    /// Like `Write`, creating the file if it does not exist.
    Create,
}

/// Which stored entries a command loads with the nodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// None: routing only.
    Routing,
    /// Every copy of the keys in the slice holding this position (so every
    /// copy of the key there, and what saving that slice needs).
    Key(Id),
    /// All of them.
    All,
}

/// An open state file, inside one transaction.
pub struct State {
    conn: SqliteConnection,
    /// The state file as the user named it (messages name this).
    path: PathBuf,
    /// A new state file is built at a temporary path beside `path` and
    /// linked into place on commit, so a command that fails leaves no file.
    pending: Option<open::PendingFile>,
    /// How the command uses it.
    access: Access,
}

/// The holders of every slice holding copies: slice → (node row id,
/// address) of each node with copies in it, by row id, no repeats. The
/// address is None for a holder a ring read on demand did not read.
type Held = BTreeMap<i64, Vec<(i64, Option<NodeId>)>>;

/// A ring read from the state, with what is needed to write back only changes.
pub struct Loaded {
    /// The ring, with every store journaling its changes.
    pub world: World,
    nodes: BTreeMap<NodeId, (i64, Vec<u8>)>,
    /// Which nodes' stores a rewritten slice must gather, and which slices
    /// lose copies when a node departs.
    held: Held,
    /// Every slice was read ([`Scope::All`]): only then may nodes depart,
    /// since their copies must leave every slice holding them.
    whole: bool,
    /// Nothing of this ring is in the file yet: save writes it whole, with
    /// no journal to keep and no existing rows to update.
    fresh: bool,
    /// (slice, holder row id, key, copy) of the copies read whose holders
    /// were not (a ring read on demand): a rewritten slice keeps them.
    kept: Vec<(i64, i64, Key, Versioned)>,
    /// Slices (and the holders' row ids) whose copies changed in the stores
    /// since the last save, noted when a load's spill emptied the journals.
    pending: BTreeMap<i64, BTreeSet<i64>>,
}

impl Loaded {
    /// Node rows read from the file: every one for a ring read whole, the
    /// ones reached for a ring read on demand.
    pub fn nodes_read(&self) -> usize {
        self.nodes.len()
    }

    /// A ring not yet in the file: everything in it will be written.
    pub fn fresh(mut world: World) -> Loaded {
        world.set_recording_changes(false);
        Loaded {
            world,
            nodes: BTreeMap::new(),
            held: Held::new(),
            whole: true,
            fresh: true,
            kept: Vec::new(),
            pending: BTreeMap::new(),
        }
    }
}

/// What a save wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Saved {
    /// Node rows inserted, updated or deleted.
    pub nodes: usize,
    /// Slice rows inserted, updated or deleted.
    pub slices: usize,
}

/// Column `i` of `row` as a `T`, or what is wrong with it. SQLite lets any
/// column hold any type, so a row edited by another program can hold an
/// integer where a blob belongs: that is damage to report, not a panic.
pub(crate) fn column<'r, T>(row: &'r sqlx::sqlite::SqliteRow, i: usize) -> Result<T, String>
where
    T: sqlx::Decode<'r, sqlx::Sqlite> + sqlx::Type<sqlx::Sqlite>,
{
    use sqlx::Row;
    row.try_get(i).map_err(|e| match e {
        sqlx::Error::ColumnDecode { index, source } => {
            format!("column {index} holds the wrong type ({source})")
        }
        other => other.to_string(),
    })
}

/// What the driver says went wrong, once: the database's own message, or
/// the operating system's, without sqlx's prefix.
fn driver_message(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Database(db) => db.message().to_owned(),
        sqlx::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}
