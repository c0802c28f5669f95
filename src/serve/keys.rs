//! The key endpoints: get, put, delete, and the paged listing.

use super::Server;
use super::auth::Caller;
use super::error::{ApiError, rejected};
use crate::app::pages::{self, KeyEntry, Page};
use crate::app::view::GetReport;
use crate::state::Role;
use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::sync::Arc;

/// Where a get starts.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct GetQuery {
    /// Start the lookup at this node (default: one chosen by the seed).
    pub from: Option<String>,
}

/// `GET /api/v1/keys/{key}`: the value, the lookup path, hops and messages.
#[utoipa::path(get, path = "/api/v1/keys/{key}", tag = "keys",
    params(("key" = String, Path, description = "The key"), GetQuery),
    responses(
        (status = 200, description = "The value and how the lookup found it", body = Object),
        (status = 404, description = "No such key (the body says so) or no such start node"),
        (status = 401, description = "No or unknown token"),
    ))]
pub async fn get(
    State(server): State<Arc<Server>>,
    caller: Caller,
    key: Result<Path<String>, PathRejection>,
    query: Result<Query<GetQuery>, QueryRejection>,
) -> Result<Json<GetReport>, ApiError> {
    caller.require(Role::Reader)?;
    let Path(key) = key.map_err(rejected)?;
    let Query(query) = query.map_err(rejected)?;
    let report = server
        .shared
        .read(|w| {
            let from = query.from.as_deref().map(|f| w.find(f)).transpose()?;
            let got = w.get(&key, from)?;
            Ok::<_, ApiError>(GetReport::new(w, &key, &got))
        })
        .await??;
    if !report.found {
        return Err(ApiError::not_found(format!("key {key:?} not found")));
    }
    Ok(Json(report))
}

/// What a put or delete did.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Written {
    /// The key.
    pub key: String,
    /// The node that took the write.
    pub node: String,
    /// True when the put replaced a value (or the delete removed one).
    pub replaced: bool,
}

/// `PUT /api/v1/keys/{key}`: stores the request body (any JSON value).
#[utoipa::path(put, path = "/api/v1/keys/{key}", tag = "keys",
    params(("key" = String, Path, description = "The key")),
    request_body(content = Object, description = "The value: any JSON", content_type = "application/json"),
    responses(
        (status = 200, description = "Stored", body = Written),
        (status = 400, description = "The body is not JSON, or the key is empty"),
        (status = 403, description = "Readers may not write"),
        (status = 413, description = "The body is over the limit"),
    ))]
pub async fn put(
    State(server): State<Arc<Server>>,
    caller: Caller,
    key: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<Written>, ApiError> {
    caller.require(Role::Writer)?;
    let Path(key) = key.map_err(rejected)?;
    let body = body.map_err(rejected)?;
    if key.is_empty() {
        return Err(ApiError::bad("the key is empty"));
    }
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad(format!("the body is not JSON: {e}")))?;
    let written = server
        .shared
        .key_write(caller.author(), &key, Some(value))
        .await?;
    Ok(Json(written))
}

/// `DELETE /api/v1/keys/{key}`.
#[utoipa::path(delete, path = "/api/v1/keys/{key}", tag = "keys",
    params(("key" = String, Path, description = "The key")),
    responses(
        (status = 200, description = "Deleted", body = Written),
        (status = 404, description = "No such key"),
        (status = 403, description = "Readers may not write"),
    ))]
pub async fn delete(
    State(server): State<Arc<Server>>,
    caller: Caller,
    key: Result<Path<String>, PathRejection>,
) -> Result<Json<Written>, ApiError> {
    caller.require(Role::Writer)?;
    let Path(key) = key.map_err(rejected)?;
    // A delete of a missing key is refused in the batch, changing nothing.
    let written = server.shared.key_write(caller.author(), &key, None).await?;
    Ok(Json(written))
}

/// A page request.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct PageQuery {
    /// The `next` of the previous page; none for the first.
    pub cursor: Option<String>,
    /// Entries per page, 1 to 1000 (default 100).
    pub limit: Option<usize>,
}

impl PageQuery {
    /// The page size asked for, checked.
    pub fn page_size(&self) -> Result<usize, ApiError> {
        page_size(self.limit)
    }
}

/// A page size asked for, checked (100 when not given).
pub fn page_size(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(100);
    if !(1..=pages::MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad("limit must be between 1 and 1000"));
    }
    Ok(limit)
}

/// A page of keys.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct KeyPageQuery {
    /// The `next` of the previous page; none for the first.
    pub cursor: Option<String>,
    /// Entries per page, 1 to 1000 (default 100).
    pub limit: Option<usize>,
    /// Only keys containing this text, ignoring case (a filtered page may
    /// scan the whole ring to fill up).
    pub contains: Option<String>,
}

/// `GET /api/v1/keys`: live keys in ring order, a page at a time.
#[utoipa::path(get, path = "/api/v1/keys", tag = "keys",
    params(KeyPageQuery),
    responses((status = 200, description = "A page of keys: items (key, value, node) and next", body = Object)))]
pub async fn list(
    State(server): State<Arc<Server>>,
    caller: Caller,
    query: Result<Query<KeyPageQuery>, QueryRejection>,
) -> Result<Json<Page<KeyEntry>>, ApiError> {
    caller.require(Role::Reader)?;
    let Query(q) = query.map_err(rejected)?;
    let limit = page_size(q.limit)?;
    let wanted = q.contains.unwrap_or_default().to_lowercase();
    let page = server
        .shared
        .read(|w| {
            pages::keys_where(w, q.cursor.as_deref(), limit, &|k| {
                wanted.is_empty() || k.to_lowercase().contains(&wanted)
            })
        })
        .await?;
    Ok(Json(page))
}
