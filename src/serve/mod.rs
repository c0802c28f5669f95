//! `dht serve`: one ring shared by many people over an HTTP/JSON API.
//!
//! The server holds the ring of a state file in memory ([`shared`]) and
//! answers every operation of the command line under `/api/v1/`: reads from
//! memory, writes committed to the file before the answer, accounts with
//! roles checked on every request ([`auth`]), errors as JSON with the
//! command line's words ([`error`]), a live stream of changes, and an
//! OpenAPI document generated from the handlers (utoipa).
//!
//! Files: `keys.rs` (get, put, delete, listing), `ring.rs` (nodes, the
//! circle, check, join, leave, fail, maintain), `people.rs` (log, events,
//! accounts), `upload.rs` (load), `page.rs` (the web page at `/`),
//! `shared.rs`, `auth.rs`, `error.rs`.

pub mod auth;
mod batch;
pub mod error;
pub mod keys;
mod page;
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
    /// Serve HTTPS with this certificate chain and private key (PEM files).
    pub tls: Option<(PathBuf, PathBuf)>,
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
        "refusing plain HTTP on {0}, which is not a loopback address: tokens would cross the network unencrypted; pass --tls-cert and --tls-key, or --insecure-http if the network is trusted"
    )]
    PlainHttp(SocketAddr),
    /// The certificate or key could not be used.
    #[error("TLS certificate {cert} / key {key}: {cause}")]
    Tls {
        /// The certificate file.
        cert: String,
        /// The key file.
        key: String,
        /// Why.
        cause: std::io::Error,
    },
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
        ring::nodes, ring::node, ring::node_keys, ring::circle, ring::circle_near, ring::circle_nodes, ring::check, ring::join, ring::leave, ring::crash, ring::maintain,
        upload::load,
        people::log, people::events, people::me, people::users, people::add_user, people::remove_user,
    ),
    components(schemas(
        keys::Written, ring::CheckReport, ring::JoinRequest, ring::Done, ring::MaintainRequest,
        upload::LoadReport, people::NewUser, people::Token, people::Me,
        crate::app::circle::Circle, crate::app::circle::CircleNode,
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
    // Routes with their whole paths rather than nested under /api/v1: a
    // nested router rebuilds each request's URI to strip the prefix.
    let app = Router::new()
        .route("/api/v1/keys", get(keys::list))
        .route(
            "/api/v1/keys/{key}",
            get(keys::get).put(keys::put).delete(keys::delete),
        )
        .route("/api/v1/ring", get(ring::nodes))
        .route("/api/v1/ring/{node}", get(ring::node))
        .route("/api/v1/ring/{node}/keys", get(ring::node_keys))
        .route("/api/v1/circle", get(ring::circle))
        .route("/api/v1/circle/near", get(ring::circle_near))
        .route("/api/v1/circle/nodes", get(ring::circle_nodes))
        .route("/api/v1/me", get(people::me))
        .route("/api/v1/check", get(ring::check))
        .route("/api/v1/nodes", post(ring::join))
        .route("/api/v1/nodes/{node}/leave", post(ring::leave))
        .route("/api/v1/nodes/{node}/fail", post(ring::crash))
        .route("/api/v1/maintain", post(ring::maintain))
        .route(
            "/api/v1/load",
            post(upload::load).layer(DefaultBodyLimit::disable()),
        )
        .route("/api/v1/log", get(people::log))
        .route("/api/v1/events", get(people::events))
        .route("/api/v1/users", get(people::users).post(people::add_user))
        .route(
            "/api/v1/users/{name}",
            axum::routing::delete(people::remove_user),
        )
        .route(
            "/api/v1/openapi.json",
            get(|| async { axum::Json(ApiDoc::openapi()) }),
        )
        .merge(page::routes())
        .fallback(|| async {
            error::ApiError::not_found("no such endpoint (see /api/v1/openapi.json)")
        })
        .layer(DefaultBodyLimit::max(max_body))
        // gzip for clients that ask (Accept-Encoding); never the event
        // stream, which tower-http's default predicate leaves alone.
        .layer(tower_http::compression::CompressionLayer::new());
    // A span and two events per request, for whoever logs tower-http at
    // debug level (`RUST_LOG=tower_http=debug`); left out when nobody does,
    // since even disabled they cost a get a few percent.
    let app = if tracing::enabled!(target: "tower_http::trace", tracing::Level::DEBUG) {
        app.layer(tower_http::trace::TraceLayer::new_for_http())
    } else {
        app
    };
    app.with_state(server)
}

/// Checks the safety defaults, reads the ring, binds, tells `ready` the
/// address it listens on and the scheme (http or https), and serves until
/// `shutdown` completes.
pub async fn serve(
    config: Config,
    ready: impl FnOnce(SocketAddr, &str),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let shared = Shared::open(config.state.clone()).await?;
    bind_policy(&config, !shared.accounts().is_empty())?;
    if let Some((cert, key)) = config.tls.clone() {
        return serve_tls(config, shared, &cert, &key, ready, shutdown).await;
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
    let (server, stop_tx, watcher) = start(config, &shared);
    ready(addr, "http");
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

/// The safe defaults: beyond loopback, only with accounts, and only over
/// TLS unless plain HTTP is asked for.
pub fn bind_policy(config: &Config, users_exist: bool) -> Result<(), ServeError> {
    if config.bind.ip().is_loopback() {
        return Ok(());
    }
    if !users_exist {
        return Err(ServeError::NoUsers(config.bind));
    }
    if !config.insecure_http && config.tls.is_none() {
        return Err(ServeError::PlainHttp(config.bind));
    }
    Ok(())
}

/// What both kinds of server start with: the handlers' shared state, the
/// switch that ends the event streams, and the watcher of the file.
fn start(
    config: Config,
    shared: &Arc<Shared>,
) -> (
    Arc<Server>,
    watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
) {
    let (stop_tx, stopping) = watch::channel(false);
    let server = Arc::new(Server {
        config,
        shared: Arc::clone(shared),
        stopping,
    });
    let watcher = tokio::spawn(Arc::clone(shared).watch());
    (server, stop_tx, watcher)
}

/// [`serve`] over TLS (rustls with the ring provider).
async fn serve_tls(
    config: Config,
    shared: Arc<Shared>,
    cert: &std::path::Path,
    key: &std::path::Path,
    ready: impl FnOnce(SocketAddr, &str),
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    // The process's one TLS provider; a second install is a no-op error.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
        .await
        .map_err(|cause| ServeError::Tls {
            cert: cert.display().to_string(),
            key: key.display().to_string(),
            cause,
        })?;
    let bind = config.bind;
    let listener = std::net::TcpListener::bind(bind)
        .map_err(|cause| ServeError::Bind { addr: bind, cause })?;
    listener
        .set_nonblocking(true)
        .map_err(|cause| ServeError::Bind { addr: bind, cause })?;
    let addr = listener
        .local_addr()
        .map_err(|cause| ServeError::Bind { addr: bind, cause })?;
    let (server, stop_tx, watcher) = start(config, &shared);
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        let _ = stop_tx.send(true);
        stopper.graceful_shutdown(Some(std::time::Duration::from_secs(5)));
    });
    ready(addr, "https");
    let result = axum_server::from_tcp_rustls(listener, tls)
        .map_err(|cause| ServeError::Bind { addr, cause })?
        .handle(handle)
        .serve(router(server).into_make_service())
        .await;
    watcher.abort();
    result.map_err(|cause| ServeError::Bind { addr, cause })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn beyond_loopback_needs_accounts_and_tls_or_consent() {
        let config = |bind: &str, tls: bool, insecure_http: bool| Config {
            state: PathBuf::from("ring.db"),
            bind: bind.parse().unwrap(),
            public_read: false,
            insecure_http,
            tls: tls.then(|| (PathBuf::from("c.pem"), PathBuf::from("k.pem"))),
            max_body: 1,
            max_upload: 1,
        };
        for lo in ["127.0.0.1:80", "[::1]:80"] {
            assert!(bind_policy(&config(lo, false, false), false).is_ok());
        }
        let any = "0.0.0.0:80";
        assert!(matches!(
            bind_policy(&config(any, true, false), false),
            Err(ServeError::NoUsers(_))
        ));
        assert!(matches!(
            bind_policy(&config(any, false, false), true),
            Err(ServeError::PlainHttp(_))
        ));
        assert!(bind_policy(&config(any, true, false), true).is_ok());
        assert!(bind_policy(&config(any, false, true), true).is_ok());
        assert!(bind_policy(&config("[::]:80", true, false), true).is_ok());
    }
}
