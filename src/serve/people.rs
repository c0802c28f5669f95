//! Who did what: the change log, the live event stream, and the accounts.

use super::Server;
use super::auth::Caller;
use super::error::{ApiError, rejected};
use crate::state::{Access, Change, LOG_LIMIT, Role, State, User};
use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State as With};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;
use tokio::sync::broadcast::error::RecvError;

/// How much of the log to show.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LogQuery {
    /// Entries, newest first (default 100, at most 10,000).
    pub limit: Option<i64>,
}

/// `GET /api/v1/log`: who changed what, newest first.
#[utoipa::path(get, path = "/api/v1/log", tag = "people", params(LogQuery),
    responses((status = 200, description = "Changes, newest first: seq, at, author, op, target, detail", body = Object)))]
pub async fn log(
    With(server): With<Arc<Server>>,
    caller: Caller,
    query: Result<Query<LogQuery>, QueryRejection>,
) -> Result<Json<Vec<Change>>, ApiError> {
    caller.require(Role::Reader)?;
    let Query(q) = query.map_err(rejected)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=LOG_LIMIT).contains(&limit) {
        return Err(ApiError::bad("limit must be between 1 and 10000"));
    }
    let mut st = State::open(server.shared.path(), Access::Read).await?;
    Ok(Json(st.recent_changes(limit).await?))
}

/// `GET /api/v1/events`: every change from now on (put, delete, load, join,
/// leave, fail, maintain, users), with its author, as Server-Sent Events:
/// the event's name is the operation, its id the log's sequence number and
/// its data the log entry as JSON.
#[utoipa::path(get, path = "/api/v1/events", tag = "people",
    responses((status = 200, description = "text/event-stream of changes")))]
pub async fn events(
    With(server): With<Arc<Server>>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    caller.require(Role::Reader)?;
    let rx = server.shared.subscribe();
    let stop = server.stopping.clone();
    let stream = futures_util::stream::unfold((rx, stop), |(mut rx, mut stop)| async move {
        loop {
            tokio::select! {
                got = rx.recv() => match got {
                    Ok(c) => {
                        let event = Event::default()
                            .event(c.op.clone())
                            .id(c.seq.to_string())
                            .json_data(&*c)
                            .expect("a change serializes");
                        return Some((Ok(event), (rx, stop)));
                    }
                    // A subscriber too slow for the buffer skips ahead.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => return None,
                },
                _ = stop.changed() => return None,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// Who the caller is and what they may do.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Me {
    /// The account's name (`anonymous` without a token).
    pub name: String,
    /// Its role (reader, writer, admin); none without a token.
    pub role: Option<String>,
    /// Reads are allowed (an account, or a ring served with --public-read).
    pub may_read: bool,
    /// put, delete and load are allowed.
    pub may_write: bool,
    /// join, leave, fail, maintain and accounts are allowed.
    pub may_admin: bool,
}

/// `GET /api/v1/me`: who the token belongs to, so that a client offers
/// only what its role allows. Never refused: an unknown token is a 401 as
/// everywhere, no token is the anonymous caller.
#[utoipa::path(get, path = "/api/v1/me", tag = "people",
    responses((status = 200, description = "The caller", body = Me), (status = 401, description = "Unknown token")))]
pub async fn me(caller: Caller) -> Json<Me> {
    Json(Me {
        role: caller.role.map(|r| r.as_str().to_owned()),
        may_read: caller.require(Role::Reader).is_ok(),
        may_write: caller.require(Role::Writer).is_ok(),
        may_admin: caller.require(Role::Admin).is_ok(),
        name: caller.name,
    })
}

/// `GET /api/v1/users`: every account (never a token).
#[utoipa::path(get, path = "/api/v1/users", tag = "people",
    responses((status = 200, description = "Accounts: name, role, created", body = Object), (status = 403, description = "Admins only")))]
pub async fn users(
    With(server): With<Arc<Server>>,
    caller: Caller,
) -> Result<Json<Vec<User>>, ApiError> {
    caller.require(Role::Admin)?;
    let mut st = State::open(server.shared.path(), Access::Read).await?;
    Ok(Json(st.users().await?))
}

/// A new account.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct NewUser {
    /// Its name.
    pub name: String,
    /// reader, writer or admin.
    pub role: String,
}

/// A new account's token, shown this once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Token {
    /// The account.
    pub name: String,
    /// The token to send as `Authorization: Bearer TOKEN`.
    pub token: String,
}

/// `POST /api/v1/users`: makes an account; the answer holds its token.
#[utoipa::path(post, path = "/api/v1/users", tag = "people", request_body = NewUser,
    responses((status = 200, description = "The account's token, shown once", body = Token), (status = 409, description = "The name is taken")))]
pub async fn add_user(
    With(server): With<Arc<Server>>,
    caller: Caller,
    body: Result<Json<NewUser>, JsonRejection>,
) -> Result<Json<Token>, ApiError> {
    caller.require(Role::Admin)?;
    let Json(req) = body.map_err(rejected)?;
    let role = Role::parse(&req.role).ok_or_else(|| {
        ApiError::bad(format!(
            "unknown role {:?}: reader, writer or admin",
            req.role
        ))
    })?;
    let mut st = State::open(server.shared.path(), Access::Write).await?;
    let token = st.add_user(&req.name, role).await?;
    st.log_change(caller.author(), "user-add", &req.name, role.as_str())
        .await?;
    st.commit().await?;
    server.shared.refresh().await?;
    Ok(Json(Token {
        name: req.name,
        token,
    }))
}

/// `DELETE /api/v1/users/{name}`: removes an account; its token stops working.
#[utoipa::path(delete, path = "/api/v1/users/{name}", tag = "people",
    params(("name" = String, Path, description = "The account")),
    responses((status = 204, description = "Removed"), (status = 404, description = "No such account")))]
pub async fn remove_user(
    With(server): With<Arc<Server>>,
    caller: Caller,
    name: Result<Path<String>, PathRejection>,
) -> Result<axum::http::StatusCode, ApiError> {
    caller.require(Role::Admin)?;
    let Path(name) = name.map_err(rejected)?;
    let mut st = State::open(server.shared.path(), Access::Write).await?;
    st.remove_user(&name).await?;
    st.log_change(caller.author(), "user-remove", &name, "")
        .await?;
    st.commit().await?;
    server.shared.refresh().await?;
    Ok(axum::http::StatusCode::NO_CONTENT)
}
