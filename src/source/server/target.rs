//! Where a SQL server source connects: the server kind, address, user and
//! database, and the password kept apart so that nothing that prints a
//! target can print it.

use super::super::SourceError;
use super::super::select::Quote;
use sqlx::mysql::MySqlConnectOptions;
use sqlx::postgres::PgConnectOptions;
use std::str::FromStr;

/// Which server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// PostgreSQL.
    Postgres,
    /// MySQL or MariaDB.
    Mysql,
    /// Microsoft SQL Server (and Azure SQL), through tiberius.
    Mssql,
}

impl Kind {
    /// The server's name, for messages.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Postgres => "PostgreSQL",
            Kind::Mysql => "MySQL",
            Kind::Mssql => "SQL Server",
        }
    }

    /// How this server quotes identifiers.
    pub fn quote(self) -> Quote {
        match self {
            Kind::Postgres => Quote::Double,
            Kind::Mysql => Quote::Backtick,
            Kind::Mssql => Quote::Bracket,
        }
    }

    /// The schema a bare `--table NAME` is read from, where the server's
    /// own default is not what its users expect.
    pub fn default_schema(self) -> Option<&'static str> {
        match self {
            Kind::Mssql => Some("dbo"),
            Kind::Postgres | Kind::Mysql => None,
        }
    }

    /// Default port, user and the password variable the server's own
    /// command-line client reads.
    fn defaults(self) -> (u16, &'static str, &'static str) {
        match self {
            Kind::Postgres => (5432, "postgres", "PGPASSWORD"),
            Kind::Mysql => (3306, "root", "MYSQL_PWD"),
            Kind::Mssql => (1433, "sa", "SQLCMDPASSWORD"),
        }
    }
}

/// How much of a SQL Server connection is encrypted (TDS negotiates it
/// before the login).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encrypt {
    /// Everything, or no connection: the default, as Microsoft's current
    /// drivers do.
    #[default]
    On,
    /// The login (and so the password) always; the rest only if the server
    /// requires it.
    Login,
    /// Nothing: for servers without TLS. The password crosses the network
    /// in the clear.
    Off,
}

impl FromStr for Encrypt {
    type Err = String;
    fn from_str(s: &str) -> Result<Encrypt, String> {
        match s.to_ascii_lowercase().as_str() {
            "on" | "true" | "yes" | "strict" | "mandatory" => Ok(Encrypt::On),
            "login" => Ok(Encrypt::Login),
            "off" | "false" | "no" | "danger_plaintext" => Ok(Encrypt::Off),
            _ => Err(format!(
                "encrypt must be on, login or off, not {s:?} (on: all traffic; login: the login only; off: none)"
            )),
        }
    }
}

/// TLS settings; only SQL Server connections use them (this build reads
/// PostgreSQL and MySQL without TLS).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tls {
    /// How much is encrypted.
    pub encrypt: Encrypt,
    /// Accept the server's certificate without checking it (self-signed
    /// certificates, as a fresh SQL Server has).
    pub trust_cert: bool,
}

/// Where to connect. Built from a URL or from separate details; the password
/// is held separately so nothing that prints a target can print it.
#[derive(Clone)]
pub struct Target {
    /// The server kind.
    pub kind: Kind,
    /// Host name or address.
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// Database name.
    pub database: String,
    /// TLS settings (SQL Server).
    pub tls: Tls,
    password: Option<String>,
}

impl std::fmt::Debug for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.describe())
    }
}

impl Target {
    /// A target from a `postgres://`, `mysql://` or `mssql://` URL. The
    /// password may come from the URL; `password` (from `DHT_DB_PASSWORD`)
    /// overrides it.
    pub fn from_url(url: &str, password: Option<String>) -> Result<Target, SourceError> {
        let kind = if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Kind::Postgres
        } else if url.starts_with("mysql://") || url.starts_with("mariadb://") {
            Kind::Mysql
        } else if url.starts_with("mssql://") || url.starts_with("sqlserver://") {
            return Self::from_mssql_url(url, password);
        } else {
            return Err(SourceError::Sql(format!(
                "{}: not a postgres://, mysql:// or mssql:// URL",
                redact(url)
            )));
        };
        let url = url.replacen("mariadb://", "mysql://", 1);
        let bad = |e: sqlx::Error| SourceError::Sql(format!("{}: {e}", redact(&url)));
        // The two option types share these getters but no trait.
        macro_rules! parts {
            ($ty:ty) => {{
                let o = <$ty>::from_str(&url).map_err(bad)?;
                let db = o.get_database().unwrap_or("").to_owned();
                (
                    o.get_host().to_owned(),
                    o.get_port(),
                    o.get_username().to_owned(),
                    db,
                )
            }};
        }
        let (host, port, user, database) = match kind {
            Kind::Postgres => parts!(PgConnectOptions),
            _ => parts!(MySqlConnectOptions),
        };
        Ok(Target {
            kind,
            host,
            port,
            user,
            database,
            tls: Tls::default(),
            password: password
                .or_else(|| password_in_url(&url))
                .or_else(|| std::env::var(kind.defaults().2).ok()),
        })
    }

    /// `mssql://USER[:PASSWORD]@HOST[:PORT][/DATABASE][?encrypt=on|login|off&trust_cert=true]`.
    /// An unknown parameter is refused rather than ignored.
    fn from_mssql_url(text: &str, password: Option<String>) -> Result<Target, SourceError> {
        let bad = |why: String| SourceError::Sql(format!("{}: {why}", redact(text)));
        let u = url::Url::parse(text).map_err(|e| bad(e.to_string()))?;
        let decode = |s: &str| percent_decode(s).unwrap_or_else(|| s.to_owned());
        let host = match u.host() {
            Some(url::Host::Ipv6(a)) => a.to_string(),
            Some(h) => h.to_string(),
            None => return Err(bad("no host".into())),
        };
        let (default_port, default_user, env_password) = Kind::Mssql.defaults();
        let mut tls = Tls::default();
        for (k, v) in u.query_pairs() {
            match k.to_ascii_lowercase().as_str() {
                "encrypt" => tls.encrypt = v.parse().map_err(bad)?,
                "trust_cert" | "trustservercertificate" => {
                    tls.trust_cert = matches!(v.to_ascii_lowercase().as_str(), "true" | "yes" | "1")
                }
                other => {
                    return Err(bad(format!(
                        "unknown parameter {other:?} (known: encrypt, trust_cert)"
                    )));
                }
            }
        }
        let user = if u.username().is_empty() {
            default_user.to_owned()
        } else {
            decode(u.username())
        };
        let database = match u.path().trim_start_matches('/') {
            "" => "master".to_owned(),
            db => decode(db),
        };
        Ok(Target {
            kind: Kind::Mssql,
            host,
            port: u.port().unwrap_or(default_port),
            user,
            database,
            tls,
            password: password
                .or_else(|| u.password().map(decode))
                .or_else(|| std::env::var(env_password).ok()),
        })
    }

    /// A target from separate details (server, port, user, database).
    /// Missing ones take the server's defaults.
    pub fn from_parts(
        kind: Kind,
        host: Option<String>,
        port: Option<u16>,
        user: Option<String>,
        database: Option<String>,
        password: Option<String>,
    ) -> Target {
        let (default_port, default_user, env_pw) = kind.defaults();
        let user = user.unwrap_or_else(|| default_user.to_owned());
        let database = database.unwrap_or_else(|| match kind {
            Kind::Mssql => "master".to_owned(),
            _ => user.clone(),
        });
        Target {
            kind,
            host: host.unwrap_or_else(|| "localhost".into()),
            port: port.unwrap_or(default_port),
            database,
            user,
            tls: Tls::default(),
            password: password.or_else(|| std::env::var(env_pw).ok()),
        }
    }

    /// The password, for the driver only.
    pub(super) fn password(&self) -> Option<&str> {
        self.password.as_deref()
    }

    /// The target as people may see it: never the password.
    pub fn describe(&self) -> String {
        format!(
            "{} database {:?} at {}:{} as user {:?}",
            self.kind.name(),
            self.database,
            self.host,
            self.port,
            self.user
        )
    }
}

/// A URL with any password replaced by `***`.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

fn password_in_url(url: &str) -> Option<String> {
    let s = url.find("://")? + 3;
    let at = url[s..].find('@')? + s;
    let creds = &url[s..at];
    let c = creds.find(':')?;
    percent_decode(&creds[c + 1..])
}

/// Percent-decoding, as URLs require for special characters; `None` if the
/// result is not UTF-8.
fn percent_decode(raw: &str) -> Option<String> {
    let mut out = Vec::new();
    let b = raw.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 3 <= b.len()
            && let Some(x) = std::str::from_utf8(&b[i + 1..i + 3])
                .ok()
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(x);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}
