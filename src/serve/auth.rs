//! Who is asking: the bearer token of a request, checked against the
//! accounts, and what each role may do.

use super::Server;
use super::error::ApiError;
use crate::state::Role;
use axum::extract::FromRequestParts;
use axum::http::StatusCode;
use axum::http::request::Parts;
use std::sync::Arc;

/// The caller of a request: an account, or nobody (no token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The account's name (`anonymous` for nobody).
    pub name: String,
    /// Its role; None for nobody.
    pub role: Option<Role>,
    /// Anonymous callers may read (`--public-read`).
    public_read: bool,
}

impl Caller {
    /// Refuses the request unless the caller may act as `needed`: 401
    /// without an account (unless the ring is public and `needed` is
    /// reader), 403 with one whose role is too low.
    pub fn require(&self, needed: Role) -> Result<(), ApiError> {
        match self.role {
            None if needed == Role::Reader && self.public_read => Ok(()),
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "this needs an account: send `Authorization: Bearer TOKEN` (`dht user add` makes one)",
            )),
            Some(role) if role >= needed => Ok(()),
            Some(role) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "user {:?} is {}; this needs {}",
                    self.name,
                    with_article(role),
                    with_article(needed)
                ),
            )),
        }
    }
}

/// "a reader", "a writer", "an admin".
fn with_article(role: Role) -> String {
    match role {
        Role::Admin => "an admin".into(),
        other => format!("a {other}"),
    }
}

impl FromRequestParts<Arc<Server>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        server: &Arc<Server>,
    ) -> Result<Caller, ApiError> {
        let public_read = server.config.public_read;
        let Some(header) = parts.headers.get(axum::http::header::AUTHORIZATION) else {
            return Ok(Caller {
                name: "anonymous".into(),
                role: None,
                public_read,
            });
        };
        let unknown = || {
            ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unknown token: send `Authorization: Bearer TOKEN` with a token `dht user add` printed",
            )
        };
        let token = header
            .to_str()
            .ok()
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(unknown)?;
        let mut found = server.shared.accounts().find(token);
        if found.is_none() {
            // An account made since the server last looked.
            server.shared.refresh().await?;
            found = server.shared.accounts().find(token);
        }
        let (name, role) = found.ok_or_else(unknown)?;
        Ok(Caller {
            name,
            role: Some(role),
            public_read,
        })
    }
}

impl Caller {
    /// The author of a change, as the log records it.
    pub fn author(&self) -> &str {
        &self.name
    }
}
