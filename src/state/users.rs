//! Accounts of people who use a served ring: a name, a role, and the
//! SHA-256 hash of a random token. The token itself is shown once, when the
//! account is made, and never stored.

use super::{State, StateError};
use rand::Rng;
use sha2::{Digest, Sha256};

/// What an account may do. Each role may do everything the ones before it
/// may.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Every read, and the events.
    Reader,
    /// Also put, delete and load.
    Writer,
    /// Also join, leave, fail, maintain, and the accounts.
    Admin,
}

impl Role {
    /// The role's name as the command line and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Reader => "reader",
            Role::Writer => "writer",
            Role::Admin => "admin",
        }
    }

    /// The role named `s`.
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "reader" => Some(Role::Reader),
            "writer" => Some(Role::Writer),
            "admin" => Some(Role::Admin),
            _ => None,
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An account as listed (never with its token).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct User {
    /// The account's name.
    pub name: String,
    /// What it may do.
    pub role: Role,
    /// When it was made (RFC 3339, UTC).
    pub created: String,
}

/// The hash a token is kept as: SHA-256, hex.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// A new random token: `dht_` and 32 random bytes in hex.
fn new_token() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("dht_{hex}")
}

/// The accounts table (format 5).
pub(super) const CREATE_USERS: &str = "CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    created TEXT NOT NULL)";

/// Why an account could not be made or removed.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    /// The name is taken.
    #[error("a user named {0:?} exists already")]
    Exists(String),
    /// No such account.
    #[error("no user named {0:?}")]
    NoSuchUser(String),
    /// The name cannot be an account's.
    #[error("{0:?} cannot name a user: use 1 to 64 letters, digits, '-', '_' or '.'")]
    BadName(String),
    /// The state file failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// Account names: 1 to 64 of letters, digits, `-`, `_`, `.` (they appear
/// in the change log and the events, and are typed on command lines).
fn check_name(name: &str) -> Result<(), UserError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(UserError::BadName(name.to_owned()))
    }
}

impl State {
    /// Makes an account; returns its token, which is kept nowhere.
    pub async fn add_user(&mut self, name: &str, role: Role) -> Result<String, UserError> {
        check_name(name)?;
        let token = new_token();
        let done = sqlx::query(
            "INSERT INTO users(name, role, token_hash, created) VALUES (?, ?, ?, ?) ON CONFLICT(name) DO NOTHING",
        )
        .bind(name)
        .bind(role.as_str())
        .bind(token_hash(&token))
        .bind(now())
        .execute(&mut self.conn)
        .await
        .map_err(self.sql())?;
        if done.rows_affected() == 0 {
            return Err(UserError::Exists(name.to_owned()));
        }
        Ok(token)
    }

    /// Removes an account; its token stops working.
    pub async fn remove_user(&mut self, name: &str) -> Result<(), UserError> {
        let done = sqlx::query("DELETE FROM users WHERE name = ?")
            .bind(name)
            .execute(&mut self.conn)
            .await
            .map_err(self.sql())?;
        if done.rows_affected() == 0 {
            return Err(UserError::NoSuchUser(name.to_owned()));
        }
        Ok(())
    }

    /// Every account, by name.
    pub async fn users(&mut self) -> Result<Vec<User>, StateError> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT name, role, created FROM users ORDER BY name")
                .fetch_all(&mut self.conn)
                .await
                .map_err(self.sql())?;
        rows.into_iter()
            .map(|(name, role, created)| {
                let role = Role::parse(&role).ok_or_else(|| {
                    self.damaged(format!("table users, user {name:?}: unknown role {role:?}"))
                })?;
                Ok(User {
                    name,
                    role,
                    created,
                })
            })
            .collect()
    }

    /// Every account by token hash: what a server checks requests against.
    pub async fn tokens(&mut self) -> Result<Vec<(String, String, Role)>, StateError> {
        let rows: Vec<(String, String, String)> =
            sqlx::query_as("SELECT token_hash, name, role FROM users")
                .fetch_all(&mut self.conn)
                .await
                .map_err(self.sql())?;
        rows.into_iter()
            .map(|(hash, name, role)| {
                let role = Role::parse(&role).ok_or_else(|| {
                    self.damaged(format!("table users, user {name:?}: unknown role {role:?}"))
                })?;
                Ok((hash, name, role))
            })
            .collect()
    }
}

/// The time now, RFC 3339 in UTC to the millisecond.
pub(super) fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
