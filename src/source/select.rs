//! The statement a SQL source runs: a whole table, its name checked and
//! quoted so it can never inject SQL, or a user's query, which must be one
//! read-only SELECT (or WITH). Shared by SQLite ([`super::sql`]) and the
//! servers ([`super::server`]).

/// What to read.
#[derive(Debug, Clone)]
pub enum Select {
    /// Every row of a table, `name` or `schema.name`.
    Table(String),
    /// A user's read-only query.
    Query(String),
}

/// Checks `name` or `schema.name` and quotes each part for SQL (double
/// quotes, as SQLite and PostgreSQL want).
pub fn quote_table(name: &str) -> Result<String, String> {
    quote_table_with(name, '"')
}

/// As [`quote_table`], with the server's identifier quote (MySQL: backtick).
/// The identifier check leaves no character that could close the quote.
pub fn quote_table_with(name: &str, q: char) -> Result<String, String> {
    let parts: Vec<&str> = name.split('.').collect();
    if parts.is_empty() || parts.len() > 2 {
        return Err(format!("table {name:?} must be NAME or SCHEMA.NAME"));
    }
    let mut out = Vec::new();
    for p in parts {
        let ok = !p.is_empty()
            && p.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
            && p.chars()
                .all(|c| c.is_alphanumeric() || c == '_' || c == '$');
        if !ok {
            return Err(format!(
                "table name {name:?} is not a plain identifier (letters, digits, _ and $, not starting with a digit)"
            ));
        }
        out.push(format!("{q}{p}{q}"));
    }
    Ok(out.join("."))
}

/// Refuses anything but one read-only SELECT or WITH statement.
pub fn check_query(q: &str) -> Result<(), String> {
    let trimmed = q.trim().trim_end_matches(';').trim();
    let first = trimmed
        .split_whitespace()
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    if first != "SELECT" && first != "WITH" {
        return Err(
            "--query must be a single read-only SELECT (or WITH ... SELECT) statement".into(),
        );
    }
    if trimmed.contains(';') {
        return Err("--query must be a single statement (it contains ';')".into());
    }
    Ok(())
}

impl Select {
    /// The statement, with identifiers quoted by `q` (`"` for SQLite and
    /// PostgreSQL, `` ` `` for MySQL).
    pub fn to_sql(&self, q: char) -> Result<String, String> {
        match self {
            Select::Table(t) => Ok(format!("SELECT * FROM {}", quote_table_with(t, q)?)),
            Select::Query(q) => {
                check_query(q)?;
                Ok(q.trim().trim_end_matches(';').to_owned())
            }
        }
    }

    /// "table NAME" or "query", for messages.
    pub fn describe(&self) -> String {
        match self {
            Select::Table(t) => format!("table {t}"),
            Select::Query(_) => "query".into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_cannot_inject() {
        assert_eq!(quote_table("items").unwrap(), "\"items\"");
        assert_eq!(quote_table("public.items").unwrap(), "\"public\".\"items\"");
        for bad in [
            "items; DROP TABLE x",
            "a\"b",
            "1abc",
            "",
            "a.b.c",
            "it ems",
            "x--",
        ] {
            assert!(quote_table(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn only_single_selects_pass() {
        assert!(check_query("SELECT k, v FROM items").is_ok());
        assert!(check_query("with x as (select 1) select * from x;").is_ok());
        for bad in [
            "DELETE FROM items",
            "SELECT 1; DROP TABLE items",
            "PRAGMA writable_schema=1",
            "",
        ] {
            assert!(check_query(bad).is_err(), "{bad}");
        }
    }
}
