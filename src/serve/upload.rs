//! `POST /api/v1/load`: a CSV, JSON, NDJSON, Parquet, Arrow IPC or
//! spreadsheet file in the request
//! body, streamed to a temporary file (up to the upload limit), read as
//! `dht load` reads files, and stored through the ring in one write.

use super::Server;
use super::auth::Caller;
use super::error::{ApiError, rejected};
use super::shared::Logged;
use crate::app::load::{LoadPlan, route_records};
use crate::source::frame::{CsvOptions, Format};
use crate::source::input::{self, Input};
use crate::source::prepare::{Compression, TextEncoding};
use crate::source::{Batch, Columns};
use crate::state::Role;
use axum::Json;
use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How to read the uploaded file.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
pub struct LoadQuery {
    /// csv, json, ndjson, parquet, ipc (Arrow IPC / Feather), or a
    /// spreadsheet: xlsx, xlsm, xlsb, xls, ods.
    pub format: String,
    /// A spreadsheet's sheet: its name or its position from 0 (default:
    /// the first).
    pub sheet: Option<String>,
    /// The key column (default: the first of exactly two columns).
    pub key_col: Option<String>,
    /// The value column (default: the second of two, or the rest of the row).
    pub value_col: Option<String>,
    /// Skip rows that cannot be read instead of refusing the file.
    pub skip_bad_rows: Option<bool>,
    /// Routing maintenance every this many records (default 100).
    pub maintain_every: Option<u64>,
}

/// What a load did (as `dht load --json` reports it).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LoadReport {
    /// Records read, skipped ones included.
    pub records_read: u64,
    /// Records stored under a key the ring did not hold.
    pub inserted: u64,
    /// Records that replaced a value.
    pub overwritten: u64,
    /// Records whose key appeared earlier in the same file.
    pub duplicates: u64,
    /// Rows skipped as bad, each with its reason.
    pub skipped: Vec<String>,
    /// Maintenance rounds run.
    pub rounds: u64,
    /// Mean lookup hops per record.
    pub mean_hops: f64,
}

/// A temporary file, removed when dropped.
struct Upload(std::path::PathBuf);

impl Drop for Upload {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

static UPLOADS: AtomicU64 = AtomicU64::new(0);

/// `POST /api/v1/load?format=...`: the file is the request body.
#[utoipa::path(post, path = "/api/v1/load", tag = "keys", params(LoadQuery),
    request_body(content = String, description = "The file", content_type = "application/octet-stream"),
    responses(
        (status = 200, description = "Loaded", body = LoadReport),
        (status = 400, description = "A bad file, row or column (nothing was stored)"),
        (status = 413, description = "The file is over the upload limit"),
    ))]
pub async fn load(
    State(server): State<Arc<Server>>,
    caller: Caller,
    query: Result<Query<LoadQuery>, QueryRejection>,
    body: Body,
) -> Result<Json<LoadReport>, ApiError> {
    caller.require(Role::Writer)?;
    let Query(q) = query.map_err(rejected)?;
    let format = format_of(&q.format)?;
    let maintain_every = q.maintain_every.unwrap_or(100);
    if maintain_every == 0 {
        return Err(ApiError::bad("maintain_every must be at least 1"));
    }
    let path = std::env::temp_dir().join(format!(
        "dht-upload-{}-{}.{}",
        std::process::id(),
        UPLOADS.fetch_add(1, Ordering::Relaxed),
        q.format
    ));
    let upload = receive(body, server.config.max_upload, path.clone()).await?;
    let source = Input::File {
        path: path.clone(),
        format,
        csv: CsvOptions::default(),
        compression: Compression::None,
        encoding: TextEncoding::Utf8,
        sheet: q.sheet.clone(),
    };
    let cols = Columns {
        key: q.key_col.clone(),
        value: q.value_col.clone(),
    };
    let skip_bad = q.skip_bad_rows.unwrap_or(false);
    let batch = read_upload(source, cols, skip_bad, &path).await?;
    drop(upload);
    let skipped: Vec<String> = batch.skipped.iter().map(|b| b.to_string()).collect();
    let records_read = (batch.records.len() + skipped.len()) as u64;
    let keys: Vec<String> = batch.records.iter().map(|r| r.key.to_string()).collect();
    let report = server
        .shared
        .write(caller.author(), |w, ctx| {
            let plan = LoadPlan {
                maintain_every,
                fresh_ring: false,
            };
            let routed = route_records(w, batch.records, plan, |_| {})
                .map_err(|e| ApiError::refused(format!("{e}: {}", e.cause)))?;
            ctx.forget_lost = keys;
            let report = LoadReport {
                records_read,
                inserted: routed.inserted,
                overwritten: routed.overwritten,
                duplicates: routed.duplicates,
                skipped,
                rounds: routed.rounds,
                mean_hops: routed.mean_hops(),
            };
            let detail = format!("{} records", routed.records());
            Ok((report, Logged::new("load", "", detail)))
        })
        .await?;
    Ok(Json(report))
}

/// The format a `format=` query parameter names.
fn format_of(name: &str) -> Result<Format, ApiError> {
    Ok(match name {
        "csv" => Format::Csv,
        "json" => Format::Json,
        "ndjson" => Format::Ndjson,
        "parquet" => Format::Parquet,
        "ipc" => Format::Ipc,
        "xlsx" | "xlsm" | "xlsb" | "xls" | "ods" => Format::Sheet,
        other => {
            return Err(ApiError::bad(format!(
                "unknown format {other:?}: csv, json, ndjson, parquet, ipc, xlsx, xlsm, xlsb, xls or ods"
            )));
        }
    })
}

/// Writes the request body to a temporary file at `path` (Parquet and
/// workbooks need a seekable file), refusing it once it passes `limit`
/// bytes; the file goes when the returned guard drops.
async fn receive(body: Body, limit: u64, path: std::path::PathBuf) -> Result<Upload, ApiError> {
    let temporary = |e: std::io::Error| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("temporary file: {e}"),
        )
    };
    let upload = Upload(path);
    let mut file = std::fs::File::create(&upload.0).map_err(temporary)?;
    let mut stream = body.into_data_stream();
    let mut size = 0u64;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::bad(format!("reading the body: {e}")))?;
        size += chunk.len() as u64;
        if size > limit {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("the file is over the upload limit of {limit} bytes"),
            ));
        }
        file.write_all(&chunk).map_err(temporary)?;
    }
    Ok(upload)
}

/// Reads the uploaded file's records, off the request threads (polars
/// blocks); errors name "the uploaded file" rather than its temporary path.
async fn read_upload(
    source: Input,
    cols: Columns,
    skip_bad: bool,
    path: &std::path::Path,
) -> Result<Batch, ApiError> {
    tokio::task::spawn_blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("a runtime for one file");
        rt.block_on(input::read(&source, &cols, skip_bad, |_| {}))
    })
    .await
    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
    .map_err(|e| {
        ApiError::bad(
            e.to_string()
                .replace(&path.display().to_string(), "the uploaded file"),
        )
    })
}
