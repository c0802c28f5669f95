//! Errors as the API answers them: a status and `{"error": "..."}`, with the
//! wording the command line uses.

use crate::app::fail::CrashError;
use crate::sim::WorldError;
use crate::state::{StateError, UserError};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// What went wrong, in words.
    pub message: String,
}

impl ApiError {
    /// An error with this status and message.
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    /// 400: the request itself is wrong.
    pub fn bad(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    /// 404: no such key or node.
    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }

    /// 409: the ring refuses the operation as it stands.
    pub fn refused(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::CONFLICT, message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "error": self.message });
        (self.status, axum::Json(body)).into_response()
    }
}

impl From<StateError> for ApiError {
    fn from(e: StateError) -> ApiError {
        let status = match &e {
            StateError::Busy(_) => StatusCode::SERVICE_UNAVAILABLE,
            StateError::NoRing(_) => StatusCode::NOT_FOUND,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<WorldError> for ApiError {
    fn from(e: WorldError) -> ApiError {
        let status = match &e {
            WorldError::NoSuchNode(_) => StatusCode::NOT_FOUND,
            WorldError::NameTaken(_)
            | WorldError::IdTaken { .. }
            | WorldError::BadName(..)
            | WorldError::VirtualNode { .. } => StatusCode::BAD_REQUEST,
            WorldError::NotRead => StatusCode::INTERNAL_SERVER_ERROR,
            WorldError::Empty | WorldError::Op(_) | WorldError::NotConverged { .. } => {
                StatusCode::CONFLICT
            }
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<CrashError> for ApiError {
    fn from(e: CrashError) -> ApiError {
        match e {
            CrashError::Refused(r) => ApiError::refused(r.to_string()),
            CrashError::World(w) => w.into(),
        }
    }
}

impl From<UserError> for ApiError {
    fn from(e: UserError) -> ApiError {
        match e {
            UserError::Exists(_) => ApiError::refused(e.to_string()),
            UserError::NoSuchUser(_) => ApiError::not_found(e.to_string()),
            UserError::BadName(_) => ApiError::bad(e.to_string()),
            UserError::State(s) => s.into(),
        }
    }
}

/// An extractor's rejection (bad JSON, bad UTF-8 in a path, a body over the
/// limit) as a JSON error with the rejection's own status, except that a
/// well-formed body of the wrong shape is bad input (400) like any other,
/// not axum's 422.
pub fn rejected(r: impl IntoResponse + std::fmt::Display) -> ApiError {
    let message = r.to_string();
    let status = match r.into_response().status() {
        StatusCode::UNPROCESSABLE_ENTITY => StatusCode::BAD_REQUEST,
        other => other,
    };
    ApiError::new(status, message)
}
