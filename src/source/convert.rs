//! Typed cells to JSON values without losing what the source said: integers
//! and decimals keep every digit (serde_json's arbitrary precision), nulls stay
//! null, dates and times become ISO 8601 text, binary becomes lowercase hex.

use chrono::{DateTime, NaiveDate, NaiveTime};
use polars::prelude::{AnyValue, TimeUnit};
use serde_json::{Number, Value};

/// A JSON value's kind, for messages.
pub fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// An exact number from its decimal text (arbitrary precision keeps it as
/// written).
pub fn number(text: &str) -> Value {
    text.parse::<Number>()
        .map(Value::Number)
        .unwrap_or_else(|_| Value::String(text.to_owned()))
}

/// A float as JSON; NaN and infinities, which JSON cannot hold, become text.
pub fn float(f: f64) -> Value {
    Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or_else(|| Value::String(f.to_string()))
}

/// Bytes as lowercase hex text.
pub fn hex(b: &[u8]) -> Value {
    Value::String(b.iter().map(|x| format!("{x:02x}")).collect())
}

/// A decimal of `scale` digits after the point, from its unscaled integer.
pub fn decimal(unscaled: i128, scale: usize) -> Value {
    let neg = unscaled < 0;
    let digits = unscaled.unsigned_abs().to_string();
    let text = if scale == 0 {
        digits
    } else if digits.len() > scale {
        format!(
            "{}.{}",
            &digits[..digits.len() - scale],
            &digits[digits.len() - scale..]
        )
    } else {
        format!("0.{}{}", "0".repeat(scale - digits.len()), digits)
    };
    number(&if neg { format!("-{text}") } else { text })
}

fn since_epoch(v: i64, unit: TimeUnit) -> Option<DateTime<chrono::Utc>> {
    match unit {
        TimeUnit::Nanoseconds => Some(DateTime::from_timestamp_nanos(v)),
        TimeUnit::Microseconds => DateTime::from_timestamp_micros(v),
        TimeUnit::Milliseconds => DateTime::from_timestamp_millis(v),
    }
}

/// A polars cell as JSON. `Err` names a type we cannot map.
pub fn any_value(av: &AnyValue) -> Result<Value, String> {
    Ok(match av {
        AnyValue::Null => Value::Null,
        AnyValue::Boolean(b) => Value::Bool(*b),
        AnyValue::String(s) => Value::String((*s).to_owned()),
        AnyValue::StringOwned(s) => Value::String(s.to_string()),
        AnyValue::UInt8(x) => Value::from(*x),
        AnyValue::UInt16(x) => Value::from(*x),
        AnyValue::UInt32(x) => Value::from(*x),
        AnyValue::UInt64(x) => Value::from(*x),
        AnyValue::UInt128(x) => number(&x.to_string()),
        AnyValue::Int8(x) => Value::from(*x),
        AnyValue::Int16(x) => Value::from(*x),
        AnyValue::Int32(x) => Value::from(*x),
        AnyValue::Int64(x) => Value::from(*x),
        AnyValue::Int128(x) => number(&x.to_string()),
        AnyValue::Float32(x) => float(f64::from(*x)),
        AnyValue::Float64(x) => float(*x),
        AnyValue::Date(days) => {
            let d = NaiveDate::from_ymd_opt(1970, 1, 1)
                .and_then(|e| e.checked_add_signed(chrono::Duration::days(i64::from(*days))))
                .ok_or_else(|| format!("date {days} days from 1970 is out of range"))?;
            Value::String(d.format("%Y-%m-%d").to_string())
        }
        AnyValue::Datetime(v, unit, tz) => datetime(*v, *unit, tz.is_some())?,
        AnyValue::DatetimeOwned(v, unit, tz) => datetime(*v, *unit, tz.is_some())?,
        AnyValue::Time(ns) => {
            let secs = (ns / 1_000_000_000) as u32;
            let t =
                NaiveTime::from_num_seconds_from_midnight_opt(secs, (ns % 1_000_000_000) as u32)
                    .ok_or_else(|| format!("time {ns} ns is out of range"))?;
            Value::String(t.format("%H:%M:%S%.f").to_string())
        }
        AnyValue::Duration(v, unit) => {
            let per_sec: i64 = match unit {
                TimeUnit::Nanoseconds => 1_000_000_000,
                TimeUnit::Microseconds => 1_000_000,
                TimeUnit::Milliseconds => 1_000,
            };
            // ISO 8601 duration in seconds, exact.
            Value::String(format!(
                "PT{}S",
                decimal_text(i128::from(*v), per_sec.ilog10() as usize)
            ))
        }
        AnyValue::Decimal(v, _precision, scale) => decimal(*v, *scale),
        AnyValue::Binary(b) => hex(b),
        AnyValue::BinaryOwned(b) => hex(b),
        AnyValue::List(s) => {
            let mut out = Vec::with_capacity(s.len());
            for x in s.iter() {
                out.push(any_value(&x)?);
            }
            Value::Array(out)
        }
        AnyValue::Struct(_, _, fields) => {
            let mut obj = serde_json::Map::new();
            for (f, v) in fields.iter().zip(av._iter_struct_av()) {
                obj.insert(f.name().to_string(), any_value(&v)?);
            }
            Value::Object(obj)
        }
        AnyValue::StructOwned(b) => {
            let mut obj = serde_json::Map::new();
            for (f, v) in b.1.iter().zip(b.0.iter()) {
                obj.insert(f.name().to_string(), any_value(v)?);
            }
            Value::Object(obj)
        }
        // Categorical and enum text (dictionary-encoded strings in Arrow
        // files) is stored as its text.
        other if other.get_str().is_some() => {
            Value::String(other.get_str().unwrap_or_default().to_owned())
        }
        other => return Err(format!("values of type {} cannot be stored", other.dtype())),
    })
}

fn decimal_text(unscaled: i128, scale: usize) -> String {
    match decimal(unscaled, scale) {
        Value::Number(n) => n.to_string(),
        Value::String(s) => s,
        _ => unreachable!(),
    }
}

fn datetime(v: i64, unit: TimeUnit, zoned: bool) -> Result<Value, String> {
    let t = since_epoch(v, unit).ok_or_else(|| format!("timestamp {v} is out of range"))?;
    // A zoned column holds UTC instants; a naive one, wall-clock times.
    Ok(Value::String(if zoned {
        t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
    } else {
        t.naive_utc().format("%Y-%m-%dT%H:%M:%S%.f").to_string()
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_keep_every_digit() {
        assert_eq!(decimal(12345, 2).to_string(), "123.45");
        assert_eq!(decimal(-5, 3).to_string(), "-0.005");
        assert_eq!(decimal(7, 0).to_string(), "7");
        let big = decimal(123456789012345678901234567890, 10);
        assert_eq!(big.to_string(), "12345678901234567890.1234567890");
    }

    #[test]
    fn floats_that_json_cannot_hold_become_text() {
        assert_eq!(float(f64::NAN), Value::String("NaN".into()));
        assert_eq!(float(1.5).to_string(), "1.5");
    }

    #[test]
    fn cells_map_to_json() {
        assert_eq!(any_value(&AnyValue::Int64(-3)).unwrap(), Value::from(-3));
        assert_eq!(
            any_value(&AnyValue::Date(19000)).unwrap(),
            Value::String("2022-01-08".into())
        );
        assert_eq!(any_value(&AnyValue::Null).unwrap(), Value::Null);
        assert_eq!(
            any_value(&AnyValue::Binary(&[0, 255])).unwrap(),
            Value::String("00ff".into())
        );
        assert_eq!(
            any_value(&AnyValue::Datetime(1_000_000, TimeUnit::Microseconds, None)).unwrap(),
            Value::String("1970-01-01T00:00:01".into())
        );
    }
}
