//! Sharing a ring: `serve`, `user` and `log`.

use super::note;
use clap::{Args, Subcommand};
use dht::serve::{self, Config};
use dht::state::{Access, LOG_LIMIT, Role, State};
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address and port to listen on; port 0 picks a free one. Addresses
    /// other than loopback need a user to exist and --insecure-http.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR:PORT")]
    pub bind: SocketAddr,
    /// Let requests without a token read (every GET and the events).
    #[arg(long)]
    pub public_read: bool,
    /// Serve plain HTTP on an address other than loopback (tokens then
    /// cross the network unencrypted).
    #[arg(long, conflicts_with = "tls_cert")]
    pub insecure_http: bool,
    /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    pub tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    pub tls_key: Option<std::path::PathBuf>,
    /// Largest JSON request body, in bytes.
    #[arg(long, default_value_t = 1 << 20, value_name = "BYTES")]
    pub max_body: usize,
    /// Largest file `POST /api/v1/load` accepts, in bytes.
    #[arg(long, default_value_t = 256 << 20, value_name = "BYTES")]
    pub max_upload: u64,
}

pub async fn serve(path: &Path, a: ServeArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let config = Config {
        state: path.to_path_buf(),
        bind: a.bind,
        public_read: a.public_read,
        insecure_http: a.insecure_http,
        tls: a.tls_cert.zip(a.tls_key),
        max_body: a.max_body,
        max_upload: a.max_upload,
    };
    let shutdown = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    // Printed as soon as the socket listens, so a script (or a test) can
    // read the address, port 0 included.
    serve::serve(
        config,
        |addr, scheme| {
            // Whoever started the server may have stopped reading: a
            // closed stdout must not stop it.
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "listening on {scheme}://{addr}/api/v1/");
            let _ = writeln!(stdout, "the ring's page: {scheme}://{addr}/");
            let _ = stdout.flush();
        },
        shutdown,
    )
    .await?;
    let _ = writeln!(out, "stopped");
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Make an account and print its token (shown this once; the state
    /// file keeps only its hash).
    Add {
        /// The account's name: letters, digits, '-', '_' or '.'.
        name: String,
        /// What it may do: reader (reads and events), writer (also put,
        /// delete, load) or admin (also join, leave, fail, maintain, users).
        #[arg(long, value_parser = ["reader", "writer", "admin"])]
        role: String,
    },
    /// List the accounts.
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an account; its token stops working at once.
    Remove {
        /// The account's name.
        name: String,
    },
}

pub async fn user(path: &Path, c: UserCommand, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    match c {
        UserCommand::Add { name, role } => {
            let role = Role::parse(&role).expect("clap checked the role");
            let mut st = State::open(path, Access::Write).await?;
            let token = st.add_user(&name, role).await?;
            super::commit(st, "user-add", &name, role.as_str()).await?;
            writeln!(out, "{token}")?;
            note(&format!(
                "user {name:?} ({role}) added; the line above is its token, shown this once: send it as `Authorization: Bearer TOKEN`"
            ));
        }
        UserCommand::List { json } => {
            let mut st = State::open(path, Access::Read).await?;
            let users = st.users().await?;
            if json {
                serde_json::to_writer_pretty(&mut *out, &users)?;
                writeln!(out)?;
            } else if users.is_empty() {
                note("no users: `dht user add NAME --role admin` makes one");
            } else {
                for u in users {
                    writeln!(out, "{}\t{}\t{}", u.name, u.role, u.created)?;
                }
            }
        }
        UserCommand::Remove { name } => {
            let mut st = State::open(path, Access::Write).await?;
            st.remove_user(&name).await?;
            super::commit(st, "user-remove", &name, "").await?;
            writeln!(out, "removed user {name:?}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct LogArgs {
    /// Entries to show, newest first (at most 10,000).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=LOG_LIMIT))]
    pub limit: i64,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

pub async fn log(path: &Path, a: LogArgs, out: &mut impl Write) -> anyhow::Result<ExitCode> {
    let mut st = State::open(path, Access::Read).await?;
    let changes = st.recent_changes(a.limit).await?;
    if a.json {
        serde_json::to_writer_pretty(&mut *out, &changes)?;
        writeln!(out)?;
        return Ok(ExitCode::SUCCESS);
    }
    for c in changes {
        let mut line = format!("{}  {}  {}  {}", c.at, c.author, c.op, c.target);
        if !c.detail.is_empty() {
            line.push_str(&format!("  ({})", c.detail));
        }
        writeln!(out, "{}", line.trim_end())?;
    }
    Ok(ExitCode::SUCCESS)
}
