//! The ring a server holds in memory, kept in step with its state file.
//!
//! Reads are answered from memory. Before answering anything the server
//! asks the file for its generation (a look at the log's header, and one
//! small query when that changed, see [`Watch`]): when another process
//! committed since, the ring, the accounts and the new log entries are read
//! again. A write takes the file's write lock, catches up the same way
//! inside that transaction, changes the ring in memory, saves what changed,
//! logs it, and commits before it answers; if any step fails the ring in
//! memory is dropped and read again, so it never runs ahead of the file.

use super::batch::KeyWrite;
use super::error::ApiError;
use super::keys::Written;
use crate::app::circle::Circle;
use crate::sim::World;
use crate::state::{
    Access, Change, Idle, Loaded, Role, Scope, State, StateError, Watch, log_size, token_hash,
};
use serde_json::Value;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use tokio::sync::{Mutex, broadcast, mpsc, oneshot};

/// Who may do what: accounts by token hash.
#[derive(Debug, Default)]
pub struct Accounts {
    by_hash: HashMap<String, (String, Role)>,
    /// Tokens already found, so a request need not hash its token again
    /// (hashing was a twentieth of a get's time). Only tokens of accounts
    /// enter, so it holds at most one entry per account, and it goes when
    /// the accounts are read again.
    found: RwLock<HashMap<String, (String, Role)>>,
}

impl Accounts {
    /// The account holding `token`, if any.
    pub fn find(&self, token: &str) -> Option<(String, Role)> {
        if let Some(hit) = self.found.read().expect("no panics holding it").get(token) {
            return Some(hit.clone());
        }
        let account = self.by_hash.get(&token_hash(token)).cloned()?;
        self.found
            .write()
            .expect("no panics holding it")
            .insert(token.to_owned(), account.clone());
        Some(account)
    }

    /// True when no account exists.
    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }
}

/// The ring in memory and what it was read at.
pub(super) struct Ring {
    /// None until read, and after a failed write.
    pub(super) loaded: Option<Loaded>,
    /// The file's generation `loaded` matches.
    generation: u64,
    /// The newest change sent to event subscribers.
    last_seq: i64,
    /// Asks the file for its generation.
    watch: Watch,
    /// Reads that had arrived when the last look at the file began: they
    /// need no look of their own (see [`Shared::read`]).
    looked: u64,
    /// The write connection between writes (see [`Idle`]).
    writer: Option<Idle>,
    /// The circle, drawn once per generation of the file.
    circle: Option<Drawn>,
}

/// The circle drawn at a generation of the file, and its JSON once asked
/// for whole.
struct Drawn {
    generation: u64,
    circle: Circle,
    json: Option<axum::body::Bytes>,
}

/// Everything the request handlers share.
pub struct Shared {
    path: PathBuf,
    pub(super) ring: Mutex<Ring>,
    accounts: RwLock<Accounts>,
    events: broadcast::Sender<Arc<Change>>,
    /// Puts and deletes waiting for the next group commit.
    writes: mpsc::UnboundedSender<KeyWrite>,
    /// Reads that have arrived, numbered in order (see [`Shared::read`]).
    arrivals: AtomicU64,
    /// Write transactions this server has committed.
    commits: AtomicU64,
}

/// Log size (bytes) past which the server checkpoints even while writes
/// keep coming (see [`Shared::watch`]).
const CHECKPOINT_ABOVE: u64 = 256 << 20;

/// Changes the event stream buffers for a slow subscriber before it skips.
const EVENT_BUFFER: usize = 1024;

impl Shared {
    /// Reads the ring at `path`, which must exist, and starts the task
    /// that commits puts and deletes in groups (see [`super::batch`]).
    pub async fn open(path: PathBuf) -> Result<Arc<Shared>, StateError> {
        let mut st = State::open(&path, Access::Read).await?;
        let generation = st.generation().await?;
        let loaded = st.load(Scope::All).await?;
        let accounts = read_accounts(&mut st).await?;
        let last_seq = st.last_change().await?;
        let (events, _) = broadcast::channel(EVENT_BUFFER);
        let watch = Watch::open(&path).await?;
        let (writes, queue) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            path,
            ring: Mutex::new(Ring {
                loaded: Some(loaded),
                generation,
                last_seq,
                watch,
                looked: 0,
                writer: None,
                circle: None,
            }),
            accounts: RwLock::new(accounts),
            events,
            writes,
            arrivals: AtomicU64::new(0),
            commits: AtomicU64::new(0),
        });
        tokio::spawn(Arc::clone(&shared).run_key_writes(queue));
        Ok(shared)
    }

    /// Stores `value` under `key` (None deletes it) in the next group
    /// commit, and answers once it is committed.
    pub async fn key_write(
        &self,
        author: &str,
        key: &str,
        value: Option<Value>,
    ) -> Result<Written, ApiError> {
        let (reply, answer) = oneshot::channel();
        let job = KeyWrite {
            author: author.to_owned(),
            key: key.to_owned(),
            value,
            reply,
        };
        let stopped = || {
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "the server is stopping",
            )
        };
        self.writes.send(job).map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// The state file.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// A new subscriber to the changes.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Change>> {
        self.events.subscribe()
    }

    /// The accounts as last read.
    pub fn accounts(&self) -> std::sync::RwLockReadGuard<'_, Accounts> {
        self.accounts
            .read()
            .expect("no panics while the accounts are replaced")
    }

    /// Runs `f` on the ring as the file holds it now (read again first if
    /// anyone committed since it was read). The look at the file costs no
    /// query while nothing was committed (see [`Watch::generation`]), and
    /// reads waiting together for the ring share one: each takes a number
    /// on arrival, and a look that began after a read arrived serves it, so
    /// it still sees every commit made before it came.
    pub async fn read<T>(&self, f: impl FnOnce(&mut World) -> T) -> Result<T, ApiError> {
        self.read_ring(|ring| {
            let loaded = ring.loaded.as_mut().expect("caught up");
            f(&mut loaded.world)
        })
        .await
    }

    /// Runs `f` on the ring and its circle ([`Circle::in_memory`]), drawn
    /// once per generation of the file: every open page asks for it after
    /// each change, and on a big ring drawing it holds the ring long enough
    /// to delay everyone else's requests (a million nodes: about a second).
    pub async fn circle_with<T>(
        &self,
        f: impl FnOnce(&World, &Circle) -> T,
    ) -> Result<T, ApiError> {
        self.read_ring(|ring| {
            drawn(ring);
            let circle = &ring.circle.as_ref().expect("drawn above").circle;
            f(&ring.loaded.as_ref().expect("caught up").world, circle)
        })
        .await
    }

    /// The circle as JSON: whole (cached with the circle: a million nodes
    /// are about a hundred megabytes of it), or its counts alone when the
    /// ring has more than `max_nodes` nodes ([`Circle::summary`]).
    pub async fn circle_json(
        &self,
        max_nodes: Option<usize>,
    ) -> Result<axum::body::Bytes, ApiError> {
        self.read_ring(|ring| {
            let drawn = drawn(ring);
            if max_nodes.is_some_and(|m| drawn.circle.node_count > m) {
                return to_json(&drawn.circle.summary());
            }
            if let Some(json) = &drawn.json {
                return Ok(json.clone());
            }
            let json = to_json(&drawn.circle)?;
            drawn.json = Some(json.clone());
            Ok(json)
        })
        .await?
    }

    /// Runs `f` on the ring caught up with the file (see [`Shared::read`]).
    async fn read_ring<T>(&self, f: impl FnOnce(&mut Ring) -> T) -> Result<T, ApiError> {
        let ticket = self.arrivals.fetch_add(1, Ordering::SeqCst) + 1;
        let mut ring = self.ring.lock().await;
        if ring.looked < ticket || ring.loaded.is_none() {
            let upto = self.arrivals.load(Ordering::SeqCst);
            self.catch_up(&mut ring).await?;
            ring.looked = upto;
        }
        Ok(f(&mut ring))
    }

    /// Reads the file again if anyone committed since the ring was read,
    /// and sends subscribers the changes logged since. Also how the server
    /// notices changes when nobody asks (see [`Shared::watch`]).
    pub async fn refresh(&self) -> Result<(), ApiError> {
        let mut ring = self.ring.lock().await;
        self.catch_up(&mut ring).await
    }

    async fn catch_up(&self, ring: &mut Ring) -> Result<(), ApiError> {
        let now = ring.watch.generation().await?;
        if ring.loaded.is_none() || now != ring.generation {
            let mut st = State::open(&self.path, Access::Read).await?;
            self.reload_if_behind(ring, &mut st).await?;
            let changes = new_changes(&mut st, ring.last_seq).await?;
            self.announce(ring, changes);
        }
        Ok(())
    }

    /// Reads the ring and the accounts again from `st` unless the ring in
    /// memory matches the generation `st` sees.
    async fn reload_if_behind(&self, ring: &mut Ring, st: &mut State) -> Result<(), StateError> {
        let generation = st.generation().await?;
        if ring.loaded.is_none() || generation != ring.generation {
            ring.loaded = None;
            ring.loaded = Some(st.load(Scope::All).await?);
            *self.accounts.write().expect("no panics while replacing") = read_accounts(st).await?;
            ring.generation = generation;
        }
        Ok(())
    }

    /// Sends subscribers `changes` (read from the file, oldest first).
    fn announce(&self, ring: &mut Ring, changes: Vec<Change>) {
        if let Some(last) = changes.last() {
            ring.last_seq = last.seq;
        }
        for c in changes {
            // Nobody listening is fine.
            let _ = self.events.send(Arc::new(c));
        }
    }

    /// Runs the write `f` on the ring inside the file's write lock, then
    /// saves, logs (`author`, and the change `f` describes) and commits it
    /// before returning `f`'s answer. `f` returns the answer and the log
    /// entry (operation, target, detail); an `f` that fails changes nothing
    /// in the file, and the ring is read again.
    pub async fn write<T>(
        &self,
        author: &str,
        f: impl FnOnce(&mut World, &mut WriteCtx) -> Result<(T, Logged), ApiError>,
    ) -> Result<T, ApiError> {
        let mut ring = self.ring.lock().await;
        let mut st = self.begin_write(&mut ring).await?;
        let loaded = ring.loaded.as_mut().expect("caught up");
        let mut ctx = WriteCtx::default();
        let outcome = f(&mut loaded.world, &mut ctx);
        let result = match outcome {
            Ok((answer, logged)) => self
                .finish(&mut st, loaded, author, &logged, &ctx)
                .await
                .map(|()| answer),
            Err(e) => Err(e),
        };
        match result {
            Ok(answer) => {
                self.commit_and_announce(&mut ring, st).await?;
                Ok(answer)
            }
            Err(e) => {
                // The ring may be half changed: read it again next time.
                ring.loaded = None;
                Err(e)
            }
        }
    }

    /// Opens a write transaction (the file's write lock) and brings the
    /// ring in memory up to what the file holds.
    pub(super) async fn begin_write(&self, ring: &mut Ring) -> Result<State, ApiError> {
        let kept = match ring.writer.take() {
            Some(idle) => idle.begin().await,
            None => None,
        };
        let mut st = match kept {
            Some(st) => st,
            None => {
                let mut st = State::open(&self.path, Access::Write).await?;
                st.defer_checkpoints().await?;
                st
            }
        };
        self.reload_if_behind(ring, &mut st).await?;
        Ok(st)
    }

    /// Commits a write begun by [`Shared::begin_write`] and sends the
    /// changes it logged to the subscribers (read inside the transaction,
    /// sent once it commits). A commit that fails drops the ring in
    /// memory, to be read again.
    pub(super) async fn commit_and_announce(
        &self,
        ring: &mut Ring,
        mut st: State,
    ) -> Result<(), ApiError> {
        let changes = match new_changes(&mut st, ring.last_seq).await {
            Ok(c) => c,
            Err(e) => {
                ring.loaded = None;
                return Err(e.into());
            }
        };
        match st.commit_keeping().await {
            Ok(mut idle) => {
                // Past the limit, catch the log up before the next write
                // (the watcher's checkpoints have copied most of it).
                if log_size(&self.path) >= CHECKPOINT_ABOVE
                    && let Err(e) = idle.checkpoint().await
                {
                    tracing::warn!(error = %e, "checkpoint");
                }
                ring.writer = Some(idle);
                self.commits.fetch_add(1, Ordering::Relaxed);
                ring.generation += 1;
                self.announce(ring, changes);
                Ok(())
            }
            Err(e) => {
                ring.loaded = None;
                Err(e.into())
            }
        }
    }

    async fn finish(
        &self,
        st: &mut State,
        loaded: &mut Loaded,
        author: &str,
        logged: &Logged,
        ctx: &WriteCtx,
    ) -> Result<(), ApiError> {
        st.save(loaded).await?;
        st.forget_lost_keys(&ctx.forget_lost).await?;
        if let Some((node, keys)) = &ctx.lost {
            st.record_lost(node, keys).await?;
        }
        st.log_change(author, &logged.op, &logged.target, &logged.detail)
            .await?;
        Ok(())
    }

    /// Every quarter second, notices what other processes committed and
    /// sends it to subscribers, so they follow changes made with `dht`
    /// commands too; then, if the server committed nothing since the last
    /// tick or the log has passed [`CHECKPOINT_ABOVE`], copies the log into
    /// the file on a connection of its own (the server's writes leave that
    /// to it, see [`State::defer_checkpoints`]). A checkpoint while writes
    /// stream in competes with them for the disk and the cores, so it waits
    /// for a pause unless the log grows too large. Runs until the server
    /// stops.
    pub async fn watch(self: Arc<Self>) {
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(250));
        let mut log = Watch::open(&self.path).await.ok();
        let mut seen = 0;
        loop {
            tick.tick().await;
            if let Err(e) = self.refresh().await {
                tracing::warn!(error = %e.message, "reading the state file again failed");
            }
            let commits = self.commits.load(Ordering::Relaxed);
            let busy = std::mem::replace(&mut seen, commits) != commits;
            if busy && log_size(&self.path) < CHECKPOINT_ABOVE {
                continue;
            }
            if let Some(w) = log.as_mut()
                && let Err(e) = w.checkpoint().await
            {
                // A read-only file cannot be checkpointed; nor need it be.
                tracing::debug!(error = %e, "checkpoint");
            }
        }
    }
}

/// The log entry of a write: operation, target and detail.
#[derive(Debug, Clone, Default)]
pub struct Logged {
    /// put, delete, load, join, leave, fail, maintain, user-add, user-remove.
    pub op: String,
    /// The key or node, or empty.
    pub target: String,
    /// More, in words.
    pub detail: String,
}

impl Logged {
    /// An entry for `op` on `target`.
    pub fn new(op: &str, target: &str, detail: impl Into<String>) -> Logged {
        Logged {
            op: op.to_owned(),
            target: target.to_owned(),
            detail: detail.into(),
        }
    }
}

/// What a write asks the state file to do besides saving the ring.
#[derive(Debug, Default)]
pub struct WriteCtx {
    /// Keys written again: no longer lost.
    pub forget_lost: Vec<String>,
    /// A forced crash lost these keys, last held by this node.
    pub lost: Option<(String, Vec<Arc<str>>)>,
}

/// Every change logged after `after`, oldest first.
async fn new_changes(st: &mut State, after: i64) -> Result<Vec<Change>, StateError> {
    let mut all = Vec::new();
    loop {
        let batch = st
            .changes_after(all.last().map_or(after, |c: &Change| c.seq), 500)
            .await?;
        if batch.is_empty() {
            return Ok(all);
        }
        all.extend(batch);
    }
}

async fn read_accounts(st: &mut State) -> Result<Accounts, StateError> {
    let by_hash = st
        .tokens()
        .await?
        .into_iter()
        .map(|(hash, name, role)| (hash, (name, role)))
        .collect();
    Ok(Accounts {
        by_hash,
        found: RwLock::default(),
    })
}

/// The circle of `ring` at its generation, drawn now if not yet.
fn drawn(ring: &mut Ring) -> &mut Drawn {
    let generation = ring.generation;
    if ring
        .circle
        .as_ref()
        .is_none_or(|d| d.generation != generation)
    {
        let loaded = ring.loaded.as_ref().expect("caught up");
        ring.circle = Some(Drawn {
            generation,
            circle: Circle::in_memory(&loaded.world),
            json: None,
        });
    }
    ring.circle.as_mut().expect("drawn above")
}

/// `circle` as a JSON body.
fn to_json(circle: &Circle) -> Result<axum::body::Bytes, ApiError> {
    serde_json::to_vec(circle)
        .map(axum::body::Bytes::from)
        .map_err(|e| {
            ApiError::new(
                axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot write the circle: {e}"),
            )
        })
}
