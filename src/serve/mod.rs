//! `dht serve`: one ring shared by many people over an HTTP/JSON API.
//!
//! The server holds the ring of a state file in memory ([`shared`]) and
//! answers every operation of the command line under `/api/v1/`: reads from
//! memory, writes committed to the file before the answer, accounts with
//! roles checked on every request ([`auth`]), errors as JSON with the
//! command line's words ([`error`]), a live stream of changes, and an
//! OpenAPI document generated from the handlers (utoipa).
//!
//! Files: `keys.rs` (get, put, delete, listing), `ring.rs` (nodes, check,
//! join, leave, fail, maintain), `people.rs` (log, events, accounts),
//! `upload.rs` (load), `shared.rs`, `auth.rs`, `error.rs`.

pub mod auth;
mod batch;
pub mod error;
pub mod keys;
mod people;
mod ring;
pub mod shared;
mod upload;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use shared::Shared;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use tokio::sync::watch;
use utoipa::OpenApi;

/// How a server runs.
#[derive(Debug, Clone)]
pub struct Config {
    /// The ring's state file.
    pub state: PathBuf,
    /// Where to listen.
    pub bind: SocketAddr,
    /// Anonymous callers may read.
    pub public_read: bool,
    /// Serve plain HTTP on an address other than loopback.
    pub insecure_http: bool,
    /// Largest JSON request body, in bytes.
    pub max_body: usize,
    /// Largest file `load` accepts, in bytes.
    pub max_upload: u64,
}

/// Why the server would not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// Strangers could reach a ring nobody guards.
    #[error(
        "refusing to serve on {0}, which is not a loopback address, while no user exists: add one with `dht user add NAME --role admin` first"
    )]
    NoUsers(SocketAddr),
    /// Tokens would cross the network in the clear.
    #[error(
        "refusing plain HTTP on {0}, which is not a loopback address: tokens would cross the network unencrypted; pass --insecure-http if the network is trusted"
    )]
    PlainHttp(SocketAddr),
    /// The state file could not be read.
    #[error(transparent)]
    State(#[from] crate::state::StateError),
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {cause}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        cause: std::io::Error,
    },
}

/// What every handler shares.
pub struct Server {
    /// How it runs.
    pub config: Config,
    /// The ring and its accounts.
    pub shared: Arc<Shared>,
    /// Turns true when the server stops, ending the event streams.
    pub stopping: watch::Receiver<bool>,
}

/// The API's OpenAPI document, generated from the handlers.
#[derive(OpenApi)]
#[openapi(
    info(title = "dht", description = "A Chord ring shared over HTTP: every `dht` command as an endpoint."),
    paths(
        keys::get, keys::put, keys::delete, keys::list,
        ring::nodes, ring::node, ring::check, ring::join, ring::leave, ring::crash, ring::maintain,
        upload::load,
        people::log, people::events, people::users, people::add_user, people::remove_user,
    ),
    components(schemas(
        keys::Written, ring::CheckReport, ring::JoinRequest, ring::Done, ring::MaintainRequest,
        upload::LoadReport, people::NewUser, people::Token,
    )),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
)]
pub struct ApiDoc;

/// Declares the bearer-token scheme.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The API's routes.
pub fn router(server: Arc<Server>) -> Router {
    let max_body = server.config.max_body;
    let api = Router::new()
        .route("/keys", get(keys::list))
        .route(
            "/keys/{key}",
            get(keys::get).put(keys::put).delete(keys::delete),
        )
        .route("/ring", get(ring::nodes))
        .route("/ring/{node}", get(ring::node))
        .route("/check", get(ring::check))
        .route("/nodes", post(ring::join))
        .route("/nodes/{node}/leave", post(ring::leave))
        .route("/nodes/{node}/fail", post(ring::crash))
        .route("/maintain", post(ring::maintain))
        .route(
            "/load",
            post(upload::load).layer(DefaultBodyLimit::disable()),
        )
        .route("/log", get(people::log))
        .route("/events", get(people::events))
        .route("/users", get(people::users).post(people::add_user))
        .route("/users/{name}", axum::routing::delete(people::remove_user))
        .route(
            "/openapi.json",
            get(|| async { axum::Json(ApiDoc::openapi()) }),
        )
        .fallback(|| async {
            error::ApiError::not_found("no such endpoint (see /api/v1/openapi.json)")
        });
    Router::new()
        .nest("/api/v1", api)
        .layer(DefaultBodyLimit::max(max_body))
        .layer(tower_http::trace::TraceLayer::new_for_http())
        .with_state(server)
}

/// Checks the safety defaults, reads the ring, binds, prints the address
/// it listens on through `ready`, and serves until `shutdown` completes.
pub async fn serve(
    config: Config,
    ready: impl FnOnce(SocketAddr),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let shared = Shared::open(config.state.clone()).await?;
    let loopback = config.bind.ip().is_loopback();
    if !loopback && shared.accounts().is_empty() {
        return Err(ServeError::NoUsers(config.bind));
    }
    if !loopback && !config.insecure_http {
        return Err(ServeError::PlainHttp(config.bind));
    }
    let listener = tokio::net::TcpListener::bind(config.bind)
        .await
        .map_err(|cause| ServeError::Bind {
            addr: config.bind,
            cause,
        })?;
    let addr = listener.local_addr().map_err(|cause| ServeError::Bind {
        addr: config.bind,
        cause,
    })?;
    let (stop_tx, stopping) = watch::channel(false);
    let server = Arc::new(Server {
        config,
        shared: Arc::clone(&shared),
        stopping,
    });
    let watcher = tokio::spawn(Arc::clone(&shared).watch());
    ready(addr);
    let app = router(server);
    let result = axum::serve(listener, app)
        .with_graceful_shutdown(async move {
            shutdown.await;
            let _ = stop_tx.send(true);
        })
        .await;
    watcher.abort();
    result.map_err(|cause| ServeError::Bind { addr, cause })
}
