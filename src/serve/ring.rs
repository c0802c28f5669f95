//! The ring endpoints: nodes (paged and one by one), check, and the
//! membership changes an admin makes: join, leave, fail, maintain.

use super::Server;
use super::auth::Caller;
use super::error::{ApiError, rejected};
use super::keys::PageQuery;
use super::shared::Logged;
use crate::app::build::CONVERGE_LIMIT;
use crate::app::circle::{Circle, CircleNode};
use crate::app::pages::{self, Page};
use crate::app::view::{self, NodeRow};
use crate::app::{fail, members};
use crate::chord::Id;
use crate::state::Role;
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// `GET /api/v1/ring`: nodes in ring order with predecessor, successors,
/// fingers and key counts, a page at a time (the cursor is a node name).
#[utoipa::path(get, path = "/api/v1/ring", tag = "ring", params(PageQuery),
    responses((status = 200, description = "A page of nodes: items and next", body = Object)))]
pub async fn nodes(
    State(server): State<Arc<Server>>,
    caller: Caller,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<Page<NodeRow>>, ApiError> {
    caller.require(Role::Reader)?;
    let Query(q) = query.map_err(rejected)?;
    let limit = q.page_size()?;
    let page = server
        .shared
        .read(|w| {
            let after = q.cursor.as_deref().map(|c| w.find(c)).transpose()?;
            Ok::<_, ApiError>(pages::nodes(w, after, limit))
        })
        .await??;
    Ok(Json(page))
}

/// `GET /api/v1/ring/{node}`: one node.
#[utoipa::path(get, path = "/api/v1/ring/{node}", tag = "ring",
    params(("node" = String, Path, description = "The node's name")),
    responses((status = 200, description = "The node", body = Object), (status = 404, description = "No such node")))]
pub async fn node(
    State(server): State<Arc<Server>>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<NodeRow>, ApiError> {
    caller.require(Role::Reader)?;
    let Path(name) = name.map_err(rejected)?;
    let row = server
        .shared
        .read(|w| {
            let id = w.find(&name)?;
            let node = w.node(id).expect("a named node is live");
            let held: Vec<Id> = node.store.iter_live().map(|(k, _)| k.id).collect();
            Ok::<_, ApiError>(view::node_row(w, node, &held))
        })
        .await??;
    Ok(Json(row))
}

/// `GET /api/v1/ring/{node}/keys`: the keys a node is responsible for.
#[utoipa::path(get, path = "/api/v1/ring/{node}/keys", tag = "ring",
    params(("node" = String, Path, description = "The node's name"), PageQuery),
    responses((status = 200, description = "node, total, and the first `limit` keys (key, value) in ring order", body = Object), (status = 404, description = "No such node")))]
pub async fn node_keys(
    State(server): State<Arc<Server>>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<PageQuery>, QueryRejection>,
) -> Result<Json<pages::NodeKeys>, ApiError> {
    caller.require(Role::Reader)?;
    let Path(name) = name.map_err(rejected)?;
    let Query(q) = query.map_err(rejected)?;
    let limit = q.page_size()?;
    let keys = server
        .shared
        .read(|w| {
            let id = w.find(&name)?;
            let node = w.node(id).expect("a named node is live");
            Ok::<_, ApiError>(pages::node_keys(w, node, limit))
        })
        .await??;
    Ok(Json(keys))
}

/// How much of the circle to send.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct CircleQuery {
    /// Send the node list only when the ring has at most this many nodes;
    /// a bigger ring comes as counts per arc alone (`nodes` empty), which a
    /// page draws as a density band. All nodes when not given.
    pub max_nodes: Option<usize>,
}

/// `GET /api/v1/circle`: the ring as a picture needs it: every node's
/// position and key count (up to `max_nodes`), and nodes and keys counted
/// per arc.
#[utoipa::path(get, path = "/api/v1/circle", tag = "ring", params(CircleQuery),
    responses((status = 200, description = "The circle", body = Circle)))]
pub async fn circle(
    State(server): State<Arc<Server>>,
    caller: Caller,
    query: Result<Query<CircleQuery>, QueryRejection>,
) -> Result<impl axum::response::IntoResponse, ApiError> {
    caller.require(Role::Reader)?;
    let Query(q) = query.map_err(rejected)?;
    let json = server.shared.circle_json(q.max_nodes).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        json,
    ))
}

/// A position on the circle.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct NearQuery {
    /// A fraction of a turn from id 0, clockwise: 0 <= at < 1.
    pub at: f64,
}

/// `GET /api/v1/circle/near?at=F`: the live node nearest a position,
/// either way round: what a page pointing at a ring drawn as counts
/// (see `max_nodes`) finds under the pointer.
#[utoipa::path(get, path = "/api/v1/circle/near", tag = "ring", params(NearQuery),
    responses((status = 200, description = "The nearest node", body = CircleNode),
        (status = 400, description = "`at` is not in [0, 1)"), (status = 404, description = "The ring is empty")))]
pub async fn circle_near(
    State(server): State<Arc<Server>>,
    caller: Caller,
    query: Result<Query<NearQuery>, QueryRejection>,
) -> Result<Json<CircleNode>, ApiError> {
    caller.require(Role::Reader)?;
    let Query(q) = query.map_err(rejected)?;
    if !(0.0..1.0).contains(&q.at) {
        return Err(ApiError::bad(
            "at must be a fraction of a turn, at least 0 and below 1",
        ));
    }
    server
        .shared
        .circle_with(|_, circle| circle.near(q.at).cloned())
        .await?
        .map(Json)
        .ok_or_else(|| ApiError::new(axum::http::StatusCode::NOT_FOUND, "the ring has no nodes"))
}

/// Nodes asked for by name.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct NamesQuery {
    /// Node names separated by line feeds (`%0A`): names may hold commas
    /// and spaces but no control characters. At most 1000.
    pub names: String,
}

/// `GET /api/v1/circle/nodes?names=A%0AB`: where the named nodes sit on
/// the circle, for drawing fingers, paths and marks over a ring drawn as
/// counts. Names not on the ring are left out.
#[utoipa::path(get, path = "/api/v1/circle/nodes", tag = "ring", params(NamesQuery),
    responses((status = 200, description = "The live nodes among those named, in the order asked", body = [CircleNode]),
        (status = 400, description = "More than 1000 names")))]
pub async fn circle_nodes(
    State(server): State<Arc<Server>>,
    caller: Caller,
    query: Result<Query<NamesQuery>, QueryRejection>,
) -> Result<Json<Vec<CircleNode>>, ApiError> {
    caller.require(Role::Reader)?;
    let Query(q) = query.map_err(rejected)?;
    let names: Vec<&str> = q.names.split('\n').filter(|n| !n.is_empty()).collect();
    if names.len() > pages::MAX_PAGE {
        return Err(ApiError::bad("at most 1000 names at a time"));
    }
    let found = server
        .shared
        .circle_with(|world, circle| {
            names
                .iter()
                .filter_map(|name| {
                    let id = world.find(name).ok()?;
                    circle.named(name, world.bits().fraction(id.id())).cloned()
                })
                .collect()
        })
        .await?;
    Ok(Json(found))
}

/// What `check` found.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct CheckReport {
    /// True when every invariant holds.
    pub ok: bool,
    /// Live nodes.
    pub nodes: usize,
    /// Each problem, in words (as `dht check` prints them).
    pub problems: Vec<String>,
    /// The nodes some problem is about, by name, each once (for marking
    /// them on the page's circle).
    pub marked: Vec<String>,
}

/// `GET /api/v1/check`: the ring's invariants and replication.
#[utoipa::path(get, path = "/api/v1/check", tag = "ring",
    responses((status = 200, description = "What check found", body = CheckReport)))]
pub async fn check(
    State(server): State<Arc<Server>>,
    caller: Caller,
) -> Result<Json<CheckReport>, ApiError> {
    caller.require(Role::Reader)?;
    let report = server
        .shared
        .read(|w| {
            let found = w.check();
            let problems: Vec<String> = found.iter().map(|p| w.describe(p)).collect();
            let marked: std::collections::BTreeSet<String> = found
                .iter()
                .flat_map(|p| p.nodes())
                .map(|n| w.name(n))
                .collect();
            CheckReport {
                ok: problems.is_empty(),
                nodes: w.len(),
                problems,
                marked: marked.into_iter().collect(),
            }
        })
        .await?;
    Ok(Json(report))
}

/// A join request.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct JoinRequest {
    /// The new node's name (default: the next free node-<i>).
    pub name: Option<String>,
    /// Join through this node (default: one chosen by the seed).
    pub via: Option<String>,
}

/// What a membership change did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Done {
    /// What happened, in the command line's words.
    pub message: String,
}

/// `POST /api/v1/nodes`: a node joins (maintenance then links it in).
#[utoipa::path(post, path = "/api/v1/nodes", tag = "ring", request_body = JoinRequest,
    responses((status = 200, description = "Joined", body = Done), (status = 400, description = "A name taken or not allowed"), (status = 403, description = "Admins only")))]
pub async fn join(
    State(server): State<Arc<Server>>,
    caller: Caller,
    body: Result<Json<JoinRequest>, JsonRejection>,
) -> Result<Json<Done>, ApiError> {
    caller.require(Role::Admin)?;
    let Json(req) = body.map_err(rejected)?;
    let done = server
        .shared
        .write(caller.author(), |w, _| {
            let via = req.via.as_deref().map(|v| w.find(v)).transpose()?;
            let name = match &req.name {
                Some(n) => n.clone(),
                None => members::free_names(w, 1).remove(0),
            };
            let message = members::join(w, &name, via)?;
            Ok((Done { message }, Logged::new("join", &name, "")))
        })
        .await?;
    Ok(Json(done))
}

/// `POST /api/v1/nodes/{node}/leave`: the node leaves gracefully.
#[utoipa::path(post, path = "/api/v1/nodes/{node}/leave", tag = "ring",
    params(("node" = String, Path, description = "The node's name")),
    responses((status = 200, description = "Left", body = Done), (status = 404, description = "No such node"), (status = 409, description = "The last node cannot leave")))]
pub async fn leave(
    State(server): State<Arc<Server>>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Json<Done>, ApiError> {
    caller.require(Role::Admin)?;
    let Path(name) = name.map_err(rejected)?;
    let done = server
        .shared
        .write(caller.author(), |w, _| {
            let ids = w.physical(&name)?;
            if w.len() == ids.len() {
                return Err(ApiError::refused(format!(
                    "{name} is the last node: it cannot leave"
                )));
            }
            let message = members::leave(w, &ids).map_err(|(_, e)| e)?;
            Ok((Done { message }, Logged::new("leave", &name, "")))
        })
        .await?;
    Ok(Json(done))
}

/// Whether to crash a node the safety policy would keep.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct FailQuery {
    /// Crash it even if keys are lost or a node is cut off.
    pub force: Option<bool>,
}

/// `POST /api/v1/nodes/{node}/fail`: the node crashes.
#[utoipa::path(post, path = "/api/v1/nodes/{node}/fail", tag = "ring",
    params(("node" = String, Path, description = "The node's name"), FailQuery),
    responses((status = 200, description = "Crashed", body = Done), (status = 404, description = "No such node"), (status = 409, description = "Refused: it would lose keys or cut a node off (force overrides)")))]
pub async fn crash(
    State(server): State<Arc<Server>>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
    query: Result<Query<FailQuery>, QueryRejection>,
) -> Result<Json<Done>, ApiError> {
    caller.require(Role::Admin)?;
    let Path(name) = name.map_err(rejected)?;
    let Query(q) = query.map_err(rejected)?;
    let force = q.force.unwrap_or(false);
    // A refusal changes nothing: checked on the ring as it is first.
    server
        .shared
        .read(|w| {
            let ids = w.physical(&name)?;
            match force {
                true => Ok(()),
                false => {
                    fail::refusal(w, &ids).map_or(Ok(()), |r| Err(ApiError::refused(r.to_string())))
                }
            }
        })
        .await??;
    let done = server
        .shared
        .write(caller.author(), |w, ctx| {
            let ids = w.physical(&name)?;
            let crashed = fail::crash(w, &ids, force)?;
            let message = members::crashed(&crashed, false);
            let detail = format!("{} keys lost", crashed.lost.len());
            ctx.lost = Some((crashed.node.clone(), crashed.lost));
            Ok((Done { message }, Logged::new("fail", &name, detail)))
        })
        .await?;
    Ok(Json(done))
}

/// A maintenance request.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
pub struct MaintainRequest {
    /// Rounds to run (default 1, at most 500).
    pub rounds: Option<usize>,
    /// Run rounds until every invariant holds (at most 500).
    pub until_stable: Option<bool>,
}

/// `POST /api/v1/maintain`: maintenance rounds.
#[utoipa::path(post, path = "/api/v1/maintain", tag = "ring", request_body = MaintainRequest,
    responses((status = 200, description = "Ran", body = Done)))]
pub async fn maintain(
    State(server): State<Arc<Server>>,
    caller: Caller,
    body: Result<Json<MaintainRequest>, JsonRejection>,
) -> Result<Json<Done>, ApiError> {
    caller.require(Role::Admin)?;
    let Json(req) = body.map_err(rejected)?;
    let rounds = req.rounds.unwrap_or(1);
    if !(1..=CONVERGE_LIMIT).contains(&rounds) {
        return Err(ApiError::bad("rounds must be between 1 and 500"));
    }
    let done = server
        .shared
        .write(caller.author(), |w, _| {
            let (ran, stable) = if req.until_stable.unwrap_or(false) {
                match w.converge(CONVERGE_LIMIT) {
                    Ok(r) => (r, true),
                    Err(_) => (CONVERGE_LIMIT, false),
                }
            } else {
                for _ in 0..rounds {
                    w.round();
                }
                (rounds, w.check().is_empty())
            };
            let message = format!(
                "ran {ran} maintenance rounds; ring {}",
                if stable {
                    "is stable"
                } else {
                    "is still settling"
                }
            );
            Ok((
                Done { message },
                Logged::new("maintain", "", format!("{ran} rounds")),
            ))
        })
        .await?;
    Ok(Json(done))
}
