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

/// Refuses anything but one SELECT or WITH statement. The statement is
/// read as SQL, not as text: a `;` inside a string, a quoted name or a
/// comment is part of the statement, and only a `;` outside them splits it.
/// The database refuses any write besides (SQLite through a read-only
/// connection, servers inside a read-only transaction); this check keeps a
/// second statement from ending that transaction.
pub fn check_query(q: &str) -> Result<(), String> {
    // Whether a backslash escapes a quote depends on the server (MySQL: yes;
    // SQLite and PostgreSQL outside E'': no): the query passes only if it
    // is one statement read either way.
    check_tokens(&significant(q, true))?;
    check_tokens(&significant(q, false))
}

/// [`check_query`] on one reading of the statement.
fn check_tokens(tokens: &[Token]) -> Result<(), String> {
    let words: Vec<String> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Semicolon | Token::Other))
        .map(|t| match t {
            Token::Word(w) => w.to_ascii_uppercase(),
            _ => String::new(),
        })
        .take(1)
        .collect();
    let first = words.first().map(String::as_str).unwrap_or("");
    if first != "SELECT" && first != "WITH" {
        return Err(
            "--query must be a single read-only SELECT (or WITH ... SELECT) statement".into(),
        );
    }
    // A trailing `;` (then nothing but space and comments) ends the one
    // statement; any other splits it in two.
    let last_real = tokens
        .iter()
        .rposition(|t| !matches!(t, Token::Semicolon))
        .unwrap_or(0);
    if tokens[..last_real].contains(&Token::Semicolon) {
        return Err("--query must be a single statement (it holds a ';' between two)".into());
    }
    Ok(())
}

/// What the statement check looks at.
#[derive(Debug, PartialEq, Eq)]
enum Token {
    /// A bare word (keyword or name).
    Word(String),
    /// A statement separator outside any string, name or comment.
    Semicolon,
    /// Anything else: strings, quoted names, numbers, punctuation.
    Other,
}

/// The tokens of `q`, comments and whitespace dropped. Strings ('...' with
/// '' inside, and with `backslash_escapes` \' too), quoted names ("...", `...`,
/// [...]), PostgreSQL dollar quotes ($tag$...$tag$), line and block
/// comments are each one token or none. An unterminated one runs to the end.
fn significant(q: &str, backslash_escapes: bool) -> Vec<Token> {
    let b = q.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let until = |from: usize, end: &[u8]| -> usize {
        b[from.min(b.len())..]
            .windows(end.len())
            .position(|w| w == end)
            .map_or(b.len(), |p| from + p + end.len())
    };
    while i < b.len() {
        let c = b[i];
        match c {
            _ if c.is_ascii_whitespace() => i += 1,
            b'-' if b.get(i + 1) == Some(&b'-') => i = until(i, b"\n"),
            b'#' => i = until(i, b"\n"), // MySQL line comment
            b'/' if b.get(i + 1) == Some(&b'*') => i = until(i + 2, b"*/"),
            b';' => {
                out.push(Token::Semicolon);
                i += 1;
            }
            b'\'' | b'"' | b'`' => {
                // Quoted; a doubled quote is the quote itself. Backslash
                // escapes (MySQL strings, PostgreSQL E'') skip a character.
                let mut j = i + 1;
                while j < b.len() {
                    if backslash_escapes && b[j] == b'\\' && c == b'\'' {
                        j += 2;
                        continue;
                    }
                    if b[j] == c {
                        if b.get(j + 1) == Some(&c) {
                            j += 2;
                            continue;
                        }
                        break;
                    }
                    j += 1;
                }
                out.push(Token::Other);
                i = (j + 1).min(b.len());
            }
            b'[' => {
                out.push(Token::Other);
                i = until(i, b"]");
            }
            b'$' => {
                // $tag$ ... $tag$ (tag may be empty); else a parameter.
                let tag_end = q[i + 1..]
                    .bytes()
                    .position(|x| !(x.is_ascii_alphanumeric() || x == b'_'))
                    .map(|p| i + 1 + p);
                match tag_end {
                    Some(t) if b[t] == b'$' => {
                        let tag = &q[i..=t];
                        out.push(Token::Other);
                        i = until(t + 1, tag.as_bytes());
                    }
                    _ => {
                        out.push(Token::Other);
                        i += 1;
                    }
                }
            }
            _ if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] >= 0x80)
                {
                    i += 1;
                }
                out.push(Token::Word(q[start..i].to_owned()));
            }
            _ => {
                out.push(Token::Other);
                i += 1;
            }
        }
    }
    out
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
        // A ';' inside a string, a quoted name or a comment is not a split.
        for ok in [
            "SELECT name || ';' FROM items",
            "SELECT 'it''s; fine' AS \"a;b\", `c;d` FROM t -- trailing; comment",
            "/* lead; */ SELECT $$;$$, $x$;$x$ FROM t;  ",
            "SELECT [odd;name] FROM t",
        ] {
            assert!(check_query(ok).is_ok(), "{ok}");
        }
        for bad in [
            "SELECT 1; DELETE FROM items",
            "SELECT ';'; DROP TABLE t",
            "SELECT 1 /* ; */; COMMIT",
            // One statement to MySQL, two to PostgreSQL: refused.
            "SELECT 'a\\'; COMMIT; DELETE FROM t; SELECT '",
        ] {
            assert!(check_query(bad).is_err(), "{bad}");
        }
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
