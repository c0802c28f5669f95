//! A small TDS responder: enough of SQL Server's side of the protocol
//! (prelogin without TLS, LOGIN7 with a password check, SQL batches answered
//! from a script) to test `dht`'s SQL Server source without a server.
//!
//! The `mssql-testing` crate's `MockTdsServer` was the first choice; it
//! does not fit: its login always succeeds (no wrong-password case), it
//! encodes six column types (no decimal, money, dates, times,
//! uniqueidentifier, text), and it brings testcontainers with it.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A column type, as SQL Server sends it.
#[derive(Debug, Clone, Copy)]
pub enum Ty {
    TinyInt,
    SmallInt,
    Int,
    BigInt,
    Bit,
    Real,
    Float,
    Decimal(u8, u8),
    Money,
    SmallMoney,
    NVarChar,
    VarChar,
    NChar,
    Char,
    Text,
    NText,
    Guid,
    Date,
    Time(u8),
    DateTime2(u8),
    DateTimeOffset(u8),
    DateTime,
    SmallDateTime,
    VarBinary,
    Binary,
    Xml,
}

/// A value, in the unit its type stores.
#[derive(Debug, Clone)]
pub enum V {
    Null,
    /// Integers, bit, money (scaled by 10^4), decimal (unscaled).
    I(i128),
    /// real and float.
    F(f64),
    /// Text of any character type.
    S(String),
    /// Bytes (binary types), or a GUID's 16 bytes in text order.
    B(Vec<u8>),
    /// date, time, datetime2, datetimeoffset: days from 0001-01-01 (UTC),
    /// increments of 10^-scale s, offset minutes.
    At(u32, u64, i16),
    /// datetime: days from 1900-01-01 and 1/300 s ticks; smalldatetime:
    /// days and minutes.
    Legacy(i32, u32),
}

/// The answer to one SQL batch.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A result set.
    Rows(Vec<(String, Ty)>, Vec<Vec<V>>),
    /// A server error: number and message.
    Error(u32, String),
    /// Bytes sent as the whole reply, then the connection closed: a
    /// malformed server.
    Raw(Vec<u8>),
    /// Nothing: a server that stalls mid-read.
    Stall,
}

/// What the responder accepts and answers.
#[derive(Debug, Clone, Default)]
pub struct Script {
    /// The password LOGIN7 must carry (any user).
    pub password: String,
    /// The one database that exists.
    pub database: String,
    /// Exact SQL batch text, and its answer.
    pub replies: Vec<(String, Reply)>,
    /// The database refuses SNAPSHOT isolation (error 3952 on first read).
    pub no_snapshot: bool,
    /// Accept connections and never answer.
    pub silent: bool,
}

/// A running responder. Every SQL batch received is recorded.
pub struct Responder {
    /// Where it listens (127.0.0.1, a free port).
    pub addr: SocketAddr,
    batches: Arc<Mutex<Vec<String>>>,
}

impl Responder {
    /// Starts answering on a thread of its own.
    pub fn start(script: Script) -> Responder {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let batches = Arc::new(Mutex::new(Vec::new()));
        let seen = batches.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = TcpListener::from_std(std_listener).unwrap();
                let script = Arc::new(script);
                loop {
                    let Ok((sock, _)) = listener.accept().await else {
                        return;
                    };
                    let (script, seen) = (script.clone(), seen.clone());
                    tokio::spawn(async move {
                        let _ = serve(sock, &script, &seen).await;
                    });
                }
            });
        });
        Responder { addr, batches }
    }

    /// The SQL batches received so far, in order.
    pub fn batches(&self) -> Vec<String> {
        self.batches.lock().unwrap().clone()
    }

    /// A URL for `dht load --url` (no TLS: the responder has none).
    pub fn url(&self, user: &str, database: &str) -> String {
        format!(
            "mssql://{user}@127.0.0.1:{}/{database}?encrypt=off",
            self.addr.port()
        )
    }
}

const PRELOGIN: u8 = 0x12;
const LOGIN7: u8 = 0x10;
const BATCH: u8 = 0x01;
const REPLY: u8 = 0x04;

async fn read_message(sock: &mut TcpStream) -> std::io::Result<(u8, Vec<u8>)> {
    let mut payload = Vec::new();
    loop {
        let mut h = [0u8; 8];
        sock.read_exact(&mut h).await?;
        let len = u16::from_be_bytes([h[2], h[3]]) as usize;
        let mut body = vec![0u8; len.saturating_sub(8)];
        sock.read_exact(&mut body).await?;
        payload.extend_from_slice(&body);
        if h[1] & 0x01 != 0 {
            return Ok((h[0], payload));
        }
    }
}

async fn send(sock: &mut TcpStream, ty: u8, payload: &[u8]) -> std::io::Result<()> {
    let chunks: Vec<&[u8]> = if payload.is_empty() {
        vec![&[]]
    } else {
        payload.chunks(4096 - 8).collect()
    };
    let last = chunks.len() - 1;
    for (i, c) in chunks.into_iter().enumerate() {
        let mut p = vec![ty, u8::from(i == last)];
        p.extend_from_slice(&((c.len() + 8) as u16).to_be_bytes());
        p.extend_from_slice(&[0, 0, (i + 1) as u8, 0]);
        p.extend_from_slice(c);
        sock.write_all(&p).await?;
    }
    sock.flush().await
}

async fn serve(
    mut sock: TcpStream,
    script: &Script,
    seen: &Mutex<Vec<String>>,
) -> std::io::Result<()> {
    let (ty, _) = read_message(&mut sock).await?;
    if script.silent {
        // Hold the connection open, saying nothing.
        let mut sink = [0u8; 1024];
        while sock.read(&mut sink).await? > 0 {}
        return Ok(());
    }
    assert_eq!(ty, PRELOGIN);
    // VERSION and ENCRYPTION (NOT_SUP: this server has no TLS).
    let mut p = vec![0x00, 0, 11, 0, 6, 0x01, 0, 17, 0, 1, 0xFF];
    p.extend_from_slice(&[16, 0, 0x10, 0, 0, 0, 0x02]);
    send(&mut sock, REPLY, &p).await?;

    let (ty, login) = read_message(&mut sock).await?;
    if ty != LOGIN7 {
        // A client that wants TLS starts its handshake here: end it.
        return Ok(());
    }
    let field = |at: usize| -> Vec<u8> {
        let off = u16::from_le_bytes([login[at], login[at + 1]]) as usize;
        let n = u16::from_le_bytes([login[at + 2], login[at + 3]]) as usize * 2;
        login[off..off + n].to_vec()
    };
    // LOGIN7 scrambles the password: each byte's nibbles swapped, XOR 0xA5.
    let password: Vec<u8> = field(44)
        .iter()
        .map(|b| {
            let x = b ^ 0xA5;
            x.rotate_left(4)
        })
        .collect();
    let database = utf16(&field(68));
    let mut out = Vec::new();
    if utf16(&password) != script.password {
        error(&mut out, 18456, 14, "Login failed for user.");
        done(&mut out, 0x02, 0);
        return send(&mut sock, REPLY, &out).await;
    }
    if !database.is_empty() && database != script.database {
        error(
            &mut out,
            4060,
            11,
            &format!("Cannot open database \"{database}\" requested by the login."),
        );
        done(&mut out, 0x02, 0);
        return send(&mut sock, REPLY, &out).await;
    }
    // ENVCHANGE database, LOGINACK (TDS 7.4), DONE.
    let mut env = vec![1];
    b_varchar(&mut env, &script.database);
    b_varchar(&mut env, "master");
    out.push(0xE3);
    out.extend_from_slice(&(env.len() as u16).to_le_bytes());
    out.extend_from_slice(&env);
    let mut ack = vec![1];
    ack.extend_from_slice(&0x7400_0004u32.to_be_bytes());
    b_varchar(&mut ack, "Microsoft SQL Server");
    ack.extend_from_slice(&[16, 0, 0, 0]);
    out.push(0xAD);
    out.extend_from_slice(&(ack.len() as u16).to_le_bytes());
    out.extend_from_slice(&ack);
    done(&mut out, 0, 0);
    send(&mut sock, REPLY, &out).await?;

    let mut snapshot = false;
    loop {
        let (ty, payload) = match read_message(&mut sock).await {
            Ok(m) => m,
            Err(_) => return Ok(()),
        };
        if ty != BATCH {
            continue;
        }
        // ALL_HEADERS (its total length first), then the text.
        let skip = u32::from_le_bytes(payload[..4].try_into().unwrap()) as usize;
        let sql = utf16(&payload[skip..]);
        seen.lock().unwrap().push(sql.clone());
        if sql.contains("ISOLATION LEVEL SNAPSHOT") {
            snapshot = true;
        } else if sql.contains("READ COMMITTED") {
            snapshot = false;
        }
        let mut out = Vec::new();
        match script.replies.iter().find(|(s, _)| *s == sql) {
            Some(_) if snapshot && script.no_snapshot => {
                error(
                    &mut out,
                    3952,
                    16,
                    "Snapshot isolation transaction failed accessing database because snapshot isolation is not allowed in this database.",
                );
                done(&mut out, 0x02, 0);
            }
            Some((_, Reply::Rows(cols, rows))) => {
                metadata(&mut out, cols);
                for r in rows {
                    out.push(0xD1);
                    for ((_, ty), v) in cols.iter().zip(r) {
                        value(&mut out, *ty, v);
                    }
                }
                done(&mut out, 0x10, rows.len() as u64);
            }
            Some((_, Reply::Error(n, m))) => {
                error(&mut out, *n, 16, m);
                done(&mut out, 0x02, 0);
            }
            Some((_, Reply::Raw(bytes))) => {
                send(&mut sock, REPLY, bytes).await?;
                return Ok(());
            }
            Some((_, Reply::Stall)) => {
                let mut sink = [0u8; 1024];
                while sock.read(&mut sink).await? > 0 {}
                return Ok(());
            }
            None if sql.starts_with("SET ") || sql.starts_with("IF @@TRANCOUNT") => {
                done(&mut out, 0, 0)
            }
            None => {
                error(
                    &mut out,
                    102,
                    15,
                    &format!("the test responder has no reply for {sql:?}"),
                );
                done(&mut out, 0x02, 0);
            }
        }
        send(&mut sock, REPLY, &out).await?;
    }
}

fn utf16(b: &[u8]) -> String {
    let units: Vec<u16> = b
        .chunks(2)
        .map(|c| u16::from_le_bytes([c[0], c[1]]))
        .collect();
    String::from_utf16_lossy(&units)
}

fn utf16_bytes(s: &str) -> Vec<u8> {
    s.encode_utf16().flat_map(|u| u.to_le_bytes()).collect()
}

fn b_varchar(out: &mut Vec<u8>, s: &str) {
    out.push(s.encode_utf16().count() as u8);
    out.extend_from_slice(&utf16_bytes(s));
}

fn us_varchar(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.encode_utf16().count() as u16).to_le_bytes());
    out.extend_from_slice(&utf16_bytes(s));
}

fn done(out: &mut Vec<u8>, status: u16, rows: u64) {
    out.push(0xFD);
    out.extend_from_slice(&status.to_le_bytes());
    out.extend_from_slice(&0xC1u16.to_le_bytes());
    out.extend_from_slice(&rows.to_le_bytes());
}

fn error(out: &mut Vec<u8>, number: u32, class: u8, msg: &str) {
    let mut e = Vec::new();
    e.extend_from_slice(&number.to_le_bytes());
    e.push(1);
    e.push(class);
    us_varchar(&mut e, msg);
    b_varchar(&mut e, "responder");
    b_varchar(&mut e, "");
    e.extend_from_slice(&1i32.to_le_bytes());
    out.push(0xAA);
    out.extend_from_slice(&(e.len() as u16).to_le_bytes());
    out.extend_from_slice(&e);
}

/// Latin1_General_CI_AS: LCID 0x0409, code page 1252.
const COLLATION: [u8; 5] = [0x09, 0x04, 0xD0, 0x00, 0x34];

fn time_len(scale: u8) -> usize {
    match scale {
        0..=2 => 3,
        3..=4 => 4,
        _ => 5,
    }
}

fn metadata(out: &mut Vec<u8>, cols: &[(String, Ty)]) {
    out.push(0x81);
    out.extend_from_slice(&(cols.len() as u16).to_le_bytes());
    for (name, ty) in cols {
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&1u16.to_le_bytes()); // nullable
        match *ty {
            Ty::TinyInt => out.extend_from_slice(&[0x26, 1]),
            Ty::SmallInt => out.extend_from_slice(&[0x26, 2]),
            Ty::Int => out.extend_from_slice(&[0x26, 4]),
            Ty::BigInt => out.extend_from_slice(&[0x26, 8]),
            Ty::Bit => out.extend_from_slice(&[0x68, 1]),
            Ty::Real => out.extend_from_slice(&[0x6D, 4]),
            Ty::Float => out.extend_from_slice(&[0x6D, 8]),
            Ty::Decimal(p, s) => out.extend_from_slice(&[0x6A, 17, p, s]),
            Ty::Money => out.extend_from_slice(&[0x6E, 8]),
            Ty::SmallMoney => out.extend_from_slice(&[0x6E, 4]),
            Ty::NVarChar | Ty::VarChar | Ty::NChar | Ty::Char => {
                out.push(match ty {
                    Ty::NVarChar => 0xE7,
                    Ty::VarChar => 0xA7,
                    Ty::NChar => 0xEF,
                    _ => 0xAF,
                });
                out.extend_from_slice(&8000u16.to_le_bytes());
                out.extend_from_slice(&COLLATION);
            }
            Ty::Text | Ty::NText => {
                out.push(if matches!(ty, Ty::Text) { 0x23 } else { 0x63 });
                out.extend_from_slice(&0x7FFF_FFFFu32.to_le_bytes());
                out.extend_from_slice(&COLLATION);
                out.push(1);
                us_varchar(out, "t");
            }
            Ty::Guid => out.extend_from_slice(&[0x24, 16]),
            Ty::Date => out.push(0x28),
            Ty::Time(s) => out.extend_from_slice(&[0x29, s]),
            Ty::DateTime2(s) => out.extend_from_slice(&[0x2A, s]),
            Ty::DateTimeOffset(s) => out.extend_from_slice(&[0x2B, s]),
            Ty::DateTime => out.extend_from_slice(&[0x6F, 8]),
            Ty::SmallDateTime => out.extend_from_slice(&[0x6F, 4]),
            Ty::VarBinary | Ty::Binary => {
                out.push(if matches!(ty, Ty::VarBinary) {
                    0xA5
                } else {
                    0xAD
                });
                out.extend_from_slice(&8000u16.to_le_bytes());
            }
            Ty::Xml => out.extend_from_slice(&[0xF1, 0]),
        }
        b_varchar(out, name);
    }
}

fn value(out: &mut Vec<u8>, ty: Ty, v: &V) {
    let var_null = |out: &mut Vec<u8>| out.extend_from_slice(&0xFFFFu16.to_le_bytes());
    match (ty, v) {
        (
            Ty::NVarChar | Ty::VarChar | Ty::NChar | Ty::Char | Ty::VarBinary | Ty::Binary,
            V::Null,
        ) => var_null(out),
        (Ty::Text | Ty::NText, V::Null) => out.push(0),
        (Ty::Xml, V::Null) => out.extend_from_slice(&u64::MAX.to_le_bytes()),
        (_, V::Null) => out.push(0),
        (Ty::TinyInt, V::I(i)) => out.extend_from_slice(&[1, *i as u8]),
        (Ty::SmallInt, V::I(i)) => sized(out, &(*i as i16).to_le_bytes()),
        (Ty::Int, V::I(i)) => sized(out, &(*i as i32).to_le_bytes()),
        (Ty::BigInt, V::I(i)) => sized(out, &(*i as i64).to_le_bytes()),
        (Ty::Bit, V::I(i)) => out.extend_from_slice(&[1, *i as u8]),
        (Ty::Real, V::F(f)) => sized(out, &(*f as f32).to_le_bytes()),
        (Ty::Float, V::F(f)) => sized(out, &f.to_le_bytes()),
        (Ty::Decimal(..), V::I(i)) => {
            out.push(17);
            out.push(u8::from(*i >= 0));
            out.extend_from_slice(&i.unsigned_abs().to_le_bytes());
        }
        (Ty::Money, V::I(i)) => {
            let v = *i as i64;
            out.push(8);
            out.extend_from_slice(&((v >> 32) as i32).to_le_bytes());
            out.extend_from_slice(&(v as u32).to_le_bytes());
        }
        (Ty::SmallMoney, V::I(i)) => sized(out, &(*i as i32).to_le_bytes()),
        (Ty::NVarChar | Ty::NChar, V::S(s)) => {
            let b = utf16_bytes(s);
            out.extend_from_slice(&(b.len() as u16).to_le_bytes());
            out.extend_from_slice(&b);
        }
        (Ty::VarChar | Ty::Char, V::S(s)) => {
            let (b, _, bad) = encoding_rs::WINDOWS_1252.encode(s);
            assert!(!bad, "{s:?} is not in code page 1252");
            out.extend_from_slice(&(b.len() as u16).to_le_bytes());
            out.extend_from_slice(&b);
        }
        (Ty::Text | Ty::NText, V::S(s)) => {
            out.push(16);
            out.extend_from_slice(&[0xAB; 16]);
            out.extend_from_slice(&[0; 8]);
            let b = if matches!(ty, Ty::Text) {
                encoding_rs::WINDOWS_1252.encode(s).0.into_owned()
            } else {
                utf16_bytes(s)
            };
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(&b);
        }
        (Ty::Guid, V::B(b)) => {
            let mut g = b.clone();
            g.swap(0, 3);
            g.swap(1, 2);
            g.swap(4, 5);
            g.swap(6, 7);
            sized(out, &g);
        }
        (Ty::VarBinary | Ty::Binary, V::B(b)) => {
            out.extend_from_slice(&(b.len() as u16).to_le_bytes());
            out.extend_from_slice(b);
        }
        (Ty::Date, V::At(days, _, _)) => sized(out, &days.to_le_bytes()[..3]),
        (Ty::Time(s), V::At(_, inc, _)) => sized(out, &inc.to_le_bytes()[..time_len(s)]),
        (Ty::DateTime2(s), V::At(days, inc, _)) => {
            let mut b = inc.to_le_bytes()[..time_len(s)].to_vec();
            b.extend_from_slice(&days.to_le_bytes()[..3]);
            sized(out, &b);
        }
        (Ty::DateTimeOffset(s), V::At(days, inc, off)) => {
            let mut b = inc.to_le_bytes()[..time_len(s)].to_vec();
            b.extend_from_slice(&days.to_le_bytes()[..3]);
            b.extend_from_slice(&off.to_le_bytes());
            sized(out, &b);
        }
        (Ty::DateTime, V::Legacy(days, ticks)) => {
            let mut b = days.to_le_bytes().to_vec();
            b.extend_from_slice(&ticks.to_le_bytes());
            sized(out, &b);
        }
        (Ty::SmallDateTime, V::Legacy(days, minutes)) => {
            let mut b = (*days as u16).to_le_bytes().to_vec();
            b.extend_from_slice(&(*minutes as u16).to_le_bytes());
            sized(out, &b);
        }
        (Ty::Xml, V::S(s)) => {
            let b = utf16_bytes(s);
            out.extend_from_slice(&(b.len() as u64).to_le_bytes());
            out.extend_from_slice(&(b.len() as u32).to_le_bytes());
            out.extend_from_slice(&b);
            out.extend_from_slice(&0u32.to_le_bytes());
        }
        (ty, v) => panic!("the responder cannot send {v:?} as {ty:?}"),
    }
}

/// A value preceded by its one-byte length.
fn sized(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b.len() as u8);
    out.extend_from_slice(b);
}
