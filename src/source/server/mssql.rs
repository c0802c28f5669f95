//! Microsoft SQL Server (and Azure SQL) through tiberius, on the same tokio
//! runtime as the other servers.
//!
//! The read runs inside a transaction that is always rolled back, at
//! SNAPSHOT isolation where the database allows it (one consistent view,
//! no shared locks held) and READ COMMITTED where it does not. SQL Server
//! has no read-only transaction; the single-statement check and the
//! rollback together keep a `--query` from changing anything (`SELECT ...
//! INTO`, the one write a SELECT can make, is undone).
//!
//! Each value keeps what the server said: integers and decimals exact, money
//! as a 4-place decimal, dates and times as ISO 8601 text with the column's
//! own fractional digits, binary as hex, uniqueidentifier as the text SQL
//! Server prints.

use super::super::sink::Sink;
use super::super::{Columns, SourceError, convert};
use super::{Encrypt, Target, refused, seconds_from_env, within_connect_timeout};
use futures_util::TryStreamExt;
use serde_json::Value;
use tiberius::{AuthMethod, Client, ColumnData, ColumnType, Config, EncryptionLevel, QueryItem};
use tokio::net::TcpStream;
use tokio_util::compat::{Compat, TokioAsyncWriteCompatExt};

type Conn = Client<Compat<TcpStream>>;

/// The server's error numbers this reader tells apart.
mod code {
    /// Login failed for user.
    pub const LOGIN_FAILED: u32 = 18456;
    /// Cannot open database requested by the login.
    pub const NO_DATABASE: u32 = 4060;
    /// Invalid object name.
    pub const NO_OBJECT: u32 = 208;
    /// Snapshot isolation is not allowed in this database.
    pub const NO_SNAPSHOT: u32 = 3952;
}

/// Starts the transaction the read runs in.
const BEGIN_SNAPSHOT: &str = "SET TRANSACTION ISOLATION LEVEL SNAPSHOT; BEGIN TRANSACTION";
/// Starts it again where SNAPSHOT is not allowed.
const BEGIN_READ_COMMITTED: &str = "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION; SET TRANSACTION ISOLATION LEVEL READ COMMITTED; BEGIN TRANSACTION";
/// Ends it, undoing anything the statement wrote.
const ROLLBACK: &str = "IF @@TRANCOUNT > 0 ROLLBACK TRANSACTION";

/// Reads every row `sql` returns, streaming. `what` names the table or
/// query in messages.
pub(super) async fn read(
    target: &Target,
    sql: &str,
    what: &str,
    cols: &Columns,
    skip_bad: bool,
    out: &mut Sink<'_>,
) -> Result<(), SourceError> {
    let origin = format!("{what} in {}", target.describe());
    let failed = |e: tiberius::error::Error| explain(target, what, &e);
    let mut client = within_connect_timeout(target, connect(target)).await?;
    let mut rows = Err(tiberius::error::Error::Protocol("not run".into()));
    // SNAPSHOT first; where the database refuses it (before any row),
    // again at READ COMMITTED.
    for begin in [BEGIN_SNAPSHOT, BEGIN_READ_COMMITTED] {
        exec(&mut client, begin).await.map_err(failed)?;
        out.clear();
        rows = stream(&mut client, sql, &origin, cols, skip_bad, out).await;
        let refused = matches!(&rows, Err(e) if e.code() == Some(code::NO_SNAPSHOT));
        if !refused || out.sent() {
            break;
        }
    }
    match rows {
        Ok(Ok(())) => {}
        Ok(Err(bad)) => return Err(bad),
        Err(e) => return Err(failed(e)),
    }
    let _ = exec(&mut client, ROLLBACK).await;
    let _ = client.close().await;
    Ok(())
}

/// Opens a connection and logs in, following one redirection (Azure SQL
/// gateways send clients on to the database's own host).
async fn connect(target: &Target) -> Result<Conn, SourceError> {
    let mut config = Config::new();
    config.host(&target.host);
    config.port(target.port);
    config.database(&target.database);
    config.application_name("dht");
    config.authentication(AuthMethod::sql_server(
        &target.user,
        target.password().unwrap_or(""),
    ));
    config.encryption(match target.tls.encrypt {
        Encrypt::On => EncryptionLevel::Required,
        Encrypt::Login => EncryptionLevel::Off,
        Encrypt::Off => EncryptionLevel::NotSupported,
    });
    if target.tls.trust_cert {
        config.trust_cert();
    }
    config.command_timeout(Some(read_timeout()));
    let mut addr = (target.host.clone(), target.port);
    for _ in 0..2 {
        let tcp = TcpStream::connect((addr.0.as_str(), addr.1))
            .await
            .map_err(|e| refused(target, &e))?;
        let _ = tcp.set_nodelay(true);
        match Client::connect(config.clone(), tcp.compat_write()).await {
            Err(tiberius::error::Error::Routing { host, port }) => {
                config.host(&host);
                config.port(port);
                addr = (host, port);
            }
            other => return other.map_err(|e| explain(target, "login", &e)),
        }
    }
    Err(SourceError::Sql(format!(
        "cannot connect to {}: the server redirected the connection more than once",
        target.describe()
    )))
}

/// How long a read waits for the server's next reply before giving up:
/// `DHT_DB_READ_TIMEOUT` seconds, default 30.
fn read_timeout() -> std::time::Duration {
    seconds_from_env("DHT_DB_READ_TIMEOUT", 30.0)
}

/// Runs a statement that returns no rows, reading its whole reply.
async fn exec(client: &mut Conn, sql: &str) -> tiberius::Result<()> {
    client.simple_query(sql).await?.into_results().await?;
    Ok(())
}

/// Streams the rows of `sql` into the sink `out`. The outer error is the server's
/// (so the caller can retry without SNAPSHOT); the inner one a row that
/// cannot be stored.
async fn stream(
    client: &mut Conn,
    sql: &str,
    origin: &str,
    cols: &Columns,
    skip_bad: bool,
    out: &mut Sink<'_>,
) -> tiberius::Result<Result<(), SourceError>> {
    let mut items = client.simple_query(sql).await?;
    while let Some(item) = items.try_next().await? {
        let row = match item {
            QueryItem::Row(row) => row,
            QueryItem::Metadata(m) if m.result_index() > 0 => {
                return Ok(Err(SourceError::Sql(format!(
                    "{origin}: the statement returned more than one result set"
                ))));
            }
            QueryItem::Metadata(_) => continue,
        };
        let taken = out
            .take_row(
                origin,
                cols,
                skip_bad,
                || row.columns().iter().map(|c| c.name().to_owned()).collect(),
                |i| {
                    let ty = row.columns()[i].column_type();
                    let data = row.get_column_data(i).map_err(|e| e.to_string())?;
                    cell(ty, data)
                },
            )
            .await;
        if let Err(bad) = taken {
            return Ok(Err(bad));
        }
    }
    Ok(Ok(()))
}

/// One clear line for a failure; the server's own words are kept only where
/// they cannot hold the password (the login error's are not kept).
fn explain(target: &Target, what: &str, e: &tiberius::error::Error) -> SourceError {
    use tiberius::error::Error;
    let t = target.describe();
    SourceError::Sql(match e {
        Error::Server(s) => match s.code() {
            code::LOGIN_FAILED => format!("cannot log in to {t}: wrong user name or password"),
            code::NO_DATABASE => {
                format!("{t}: the database does not exist (or this user may not open it)")
            }
            code::NO_OBJECT => format!("{t}: {what}: no such table"),
            _ => format!("{t}: {what}: {}", s.message()),
        },
        Error::Io { kind, message } => match kind {
            std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset => {
                format!("{t}: {what}: the server closed the connection")
            }
            std::io::ErrorKind::TimedOut => format!(
                "{t}: {what}: the server stopped answering (nothing for {} s; DHT_DB_READ_TIMEOUT sets how long to wait)",
                read_timeout().as_secs_f64()
            ),
            _ => format!("{t}: {what}: {message}"),
        },
        Error::Tls(m) => format!(
            "cannot connect to {t}: TLS failed ({m}); a self-signed certificate needs --trust-cert, a server without TLS --encrypt off"
        ),
        Error::Protocol(m) if m.contains("encryption") => format!(
            "cannot connect to {t}: the server does not encrypt connections; --encrypt off connects without TLS (the password is then sent in the clear)"
        ),
        Error::Protocol(m) | Error::Encoding(m) | Error::Conversion(m) => {
            format!("{t}: {what}: the server's reply could not be read: {m}")
        }
        other => format!("{t}: {what}: {other}"),
    })
}

/// A cell as JSON. `ty` is the column's declared type, which tells money
/// (delivered by the driver as a float) and the types with no JSON mapping
/// apart.
fn cell(ty: ColumnType, data: &ColumnData<'static>) -> Result<Value, String> {
    use ColumnData as D;
    match ty {
        ColumnType::Xml | ColumnType::Udt | ColumnType::SSVariant => {
            return Err(format!(
                "values of SQL Server type {} cannot be stored (no JSON mapping); CAST the column to nvarchar(max) in --query",
                type_name(ty)
            ));
        }
        ColumnType::Money | ColumnType::Money4 => {
            return match data {
                D::F64(None) | D::F32(None) => Ok(Value::Null),
                D::F64(Some(f)) => money(*f),
                _ => Err("the server sent money in an unknown form".into()),
            };
        }
        _ => {}
    }
    Ok(match data {
        D::U8(v) => v.map_or(Value::Null, Value::from),
        D::I16(v) => v.map_or(Value::Null, Value::from),
        D::I32(v) => v.map_or(Value::Null, Value::from),
        D::I64(v) => v.map_or(Value::Null, Value::from),
        // real: the shortest text that reads back as the same f32.
        D::F32(v) => v.map_or(Value::Null, |f| convert::number(&f.to_string())),
        D::F64(v) => v.map_or(Value::Null, convert::float),
        D::Bit(v) => v.map_or(Value::Null, Value::Bool),
        D::String(v) => v
            .as_ref()
            .map_or(Value::Null, |s| Value::String(s.to_string())),
        D::Guid(v) => v.map_or(Value::Null, |g| {
            Value::String(g.hyphenated().to_string().to_ascii_uppercase())
        }),
        D::Binary(v) => v.as_ref().map_or(Value::Null, |b| convert::hex(b)),
        D::Numeric(v) => v.map_or(Value::Null, |n| {
            convert::decimal(n.value(), n.scale() as usize)
        }),
        D::Xml(_) => return Err("values of SQL Server type xml cannot be stored".into()),
        D::DateTime(v) => v.map_or(Value::Null, |d| {
            // Days from 1900-01-01 and 1/300 s ticks, shown to the
            // millisecond as SQL Server does (.000, .003, .007).
            let ms = (u64::from(d.seconds_fragments()) * 10 + 1) / 3;
            Value::String(format!(
                "{}T{}",
                date(i64::from(d.days()) + DAYS_1900),
                clock(ms as i64, 3)
            ))
        }),
        D::SmallDateTime(v) => v.map_or(Value::Null, |d| {
            let minutes = i64::from(d.seconds_fragments());
            Value::String(format!(
                "{}T{}",
                date(i64::from(d.days()) + DAYS_1900),
                clock(minutes * 60, 0)
            ))
        }),
        D::Date(v) => v.map_or(Value::Null, |d| Value::String(date(i64::from(d.days())))),
        D::Time(v) => v.map_or(Value::Null, |t| {
            Value::String(clock(t.increments() as i64, t.scale()))
        }),
        D::DateTime2(v) => v.map_or(Value::Null, |d| {
            Value::String(stamp(
                i64::from(d.date().days()),
                d.time().increments() as i64,
                d.time().scale(),
                None,
            ))
        }),
        D::DateTimeOffset(v) => v.map_or(Value::Null, |d| {
            // The wire holds UTC and the offset; people read local time.
            let dt = d.datetime2();
            Value::String(stamp(
                i64::from(dt.date().days()),
                dt.time().increments() as i64,
                dt.time().scale(),
                Some(d.offset()),
            ))
        }),
    })
}

/// Days from 0001-01-01 to 1900-01-01, where `datetime` counts from.
const DAYS_1900: i64 = 693_595;

/// 10^scale, the number of time increments per second at `scale`.
fn per_second(scale: u8) -> i64 {
    10i64.pow(u32::from(scale.min(7)))
}

/// `days` from 0001-01-01 as YYYY-MM-DD.
fn date(days: i64) -> String {
    let start = chrono::NaiveDate::from_ymd_opt(1, 1, 1).expect("a valid date");
    match start.checked_add_signed(chrono::TimeDelta::days(days)) {
        Some(d) => d.format("%Y-%m-%d").to_string(),
        None => format!("day {days} after 0001-01-01"),
    }
}

/// A time of day from `increments` of 10^-scale s as HH:MM:SS with
/// `scale` fractional digits.
fn clock(increments: i64, scale: u8) -> String {
    let per = per_second(scale);
    let (secs, frac) = (increments / per, increments % per);
    let hms = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
    if scale == 0 {
        hms
    } else {
        format!("{hms}.{frac:0width$}", width = usize::from(scale.min(7)))
    }
}

/// A date and time, shifted by `offset` minutes when given and then
/// written with it (+HH:MM).
fn stamp(days: i64, increments: i64, scale: u8, offset: Option<i16>) -> String {
    let per_day = per_second(scale) * 86_400;
    let shift = i64::from(offset.unwrap_or(0)) * 60 * per_second(scale);
    let total = days * per_day + increments + shift;
    let text = format!(
        "{}T{}",
        date(total.div_euclid(per_day)),
        clock(total.rem_euclid(per_day), scale)
    );
    match offset {
        None => text,
        Some(m) => {
            let sign = if m < 0 { '-' } else { '+' };
            let m = m.unsigned_abs();
            format!("{text}{sign}{:02}:{:02}", m / 60, m % 60)
        }
    }
}

/// money as an exact 4-place decimal. The driver hands it over as
/// value/10^4 in an f64, which gives the stored integer back exactly while
/// it stays within 2^50 (about 112 billion); beyond that digits are gone.
fn money(f: f64) -> Result<Value, String> {
    let scaled = (f * 1e4).round();
    if !scaled.is_finite() || scaled.abs() > (1u64 << 50) as f64 {
        return Err(
            "a money value beyond 112 billion cannot be read exactly; CAST it to decimal(19,4) in --query"
                .into(),
        );
    }
    Ok(convert::decimal(scaled as i128, 4))
}

/// The SQL Server name of a column type, for messages.
fn type_name(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Xml => "xml",
        ColumnType::Udt => "a user-defined type (CLR: geography, geometry, hierarchyid)",
        ColumnType::SSVariant => "sql_variant",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_8601_with_the_columns_digits() {
        assert_eq!(date(0), "0001-01-01");
        assert_eq!(date(DAYS_1900), "1900-01-01");
        assert_eq!(clock(0, 0), "00:00:00");
        assert_eq!(clock(452_961_234_567, 7), "12:34:56.1234567");
        assert_eq!(clock(45_296_100, 3), "12:34:56.100");
        // 23:30 UTC on 2024-01-01 at +02:00 is 01:30 on 2024-01-02.
        let d = 738_885; // 2024-01-01
        assert_eq!(date(d), "2024-01-01");
        assert_eq!(
            stamp(d, (23 * 3600 + 1800) * 100, 2, Some(120)),
            "2024-01-02T01:30:00.00+02:00"
        );
        assert_eq!(
            stamp(d, 1800 * 10, 1, Some(-90)),
            "2023-12-31T23:00:00.0-01:30"
        );
        assert_eq!(stamp(d, 5, 0, None), "2024-01-01T00:00:05");
    }

    #[test]
    fn money_keeps_four_places_exactly() {
        assert_eq!(money(12.3456).unwrap().to_string(), "12.3456");
        assert_eq!(money(-0.0001).unwrap().to_string(), "-0.0001");
        assert_eq!(
            money(99_999_999_999.999_9).unwrap().to_string(),
            "99999999999.9999"
        );
        assert!(money(922_337_203_685_477.0).is_err());
    }
}
