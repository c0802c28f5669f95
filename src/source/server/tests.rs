//! Tests of [`super`].

use super::*;

#[test]
fn passwords_never_show() {
    assert_eq!(
        redact("postgres://u:secret@h:5432/db"),
        "postgres://u:***@h:5432/db"
    );
    assert_eq!(redact("mysql://u@h/db"), "mysql://u@h/db");
    let t = Target::from_url("postgres://u:s%40cret@h:5433/db", None).unwrap();
    assert_eq!(t.password(), Some("s@cret"));
    assert!(!format!("{t:?}").contains("cret"));
    assert_eq!(
        (
            t.host.as_str(),
            t.port,
            t.user.as_str(),
            t.database.as_str()
        ),
        ("h", 5433, "u", "db")
    );
    let t = Target::from_url("mysql://u:pw@h/db", Some("override".into())).unwrap();
    assert_eq!(t.password(), Some("override"));
}

#[test]
fn text_cells_map_by_type() {
    let none = || Err(String::new());
    assert_eq!(
        cell(
            "NUMERIC",
            Some("12345678901234567890.123456789".into()),
            none
        )
        .unwrap()
        .to_string(),
        "12345678901234567890.123456789"
    );
    assert_eq!(
        cell("BOOL", Some("t".into()), none).unwrap(),
        Value::Bool(true)
    );
    assert_eq!(
        cell("JSONB", Some("{\"a\": [1]}".into()), none).unwrap(),
        serde_json::json!({"a": [1]})
    );
    assert_eq!(
        cell("TIMESTAMP", Some("2024-01-02 03:04:05".into()), none).unwrap(),
        Value::String("2024-01-02T03:04:05".into())
    );
    assert_eq!(
        cell("BYTEA", None, || Ok(b"\\x00ff".to_vec())).unwrap(),
        Value::String("00ff".into())
    );
    assert_eq!(
        cell("BLOB", None, || Ok(vec![0, 255])).unwrap(),
        Value::String("00ff".into())
    );
    assert!(
        cell("POINT", Some("(1,2)".into()), none)
            .unwrap_err()
            .contains("POINT")
    );
}

#[test]
fn sql_server_urls() {
    let t = Target::from_url(
        "mssql://app%40corp:p%C3%A4ss@[::1]:14330/Sales%20DB?encrypt=login&trust_cert=true",
        None,
    )
    .unwrap();
    assert_eq!(
        (
            t.kind,
            t.host.as_str(),
            t.port,
            t.user.as_str(),
            t.database.as_str()
        ),
        (Kind::Mssql, "::1", 14330, "app@corp", "Sales DB")
    );
    assert_eq!(t.password(), Some("päss"));
    assert_eq!(
        t.tls,
        Tls {
            encrypt: Encrypt::Login,
            trust_cert: true
        }
    );
    assert!(!format!("{t:?}").contains("päss"));
    let d = Target::from_url("sqlserver://db.example", Some("pw".into())).unwrap();
    assert_eq!(
        (d.port, d.user.as_str(), d.database.as_str()),
        (1433, "sa", "master")
    );
    assert_eq!(d.tls, Tls::default());
    assert_eq!(d.password(), Some("pw"));
    for bad in [
        "mssql://h/db?encrypt=maybe",
        "mssql://h/db?timeout=5",
        "mssql:///db",
    ] {
        assert!(Target::from_url(bad, None).is_err(), "{bad}");
    }
    assert_eq!(
        redact("mssql://u:se@cret@h/db"),
        "mssql://u:***@h/db",
        "a password holding @ is hidden whole"
    );
}
