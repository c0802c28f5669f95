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

/// How a server quotes identifiers. Inside the quotes the closing quote
/// character is doubled, so any name, however odd, stays one name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// `"name"`: SQLite and PostgreSQL (standard SQL).
    Double,
    /// `` `name` ``: MySQL and MariaDB.
    Backtick,
    /// `[name]`: SQL Server.
    Bracket,
}

impl Quote {
    /// `raw` as one quoted identifier.
    pub fn ident(self, raw: &str) -> String {
        match self {
            Quote::Double => format!("\"{}\"", raw.replace('"', "\"\"")),
            Quote::Backtick => format!("`{}`", raw.replace('`', "``")),
            Quote::Bracket => format!("[{}]", raw.replace(']', "]]")),
        }
    }
}

/// A table name as the user gave it to `--table`: `NAME` or `SCHEMA.NAME`,
/// each part either bare (any characters but a dot, spaces and Unicode
/// included) or quoted in any server's style (`"..."`, `` `...` ``,
/// `[...]`, the closing quote doubled inside), so a dot inside quotes is
/// part of the name. The parts are kept unquoted; [`TableName::quoted`]
/// quotes them the server's way.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// The schema (PostgreSQL schema, MySQL database, SQL Server schema),
    /// if given.
    pub schema: Option<String>,
    /// The table itself.
    pub name: String,
}

impl TableName {
    /// Splits and unquotes `text`; refuses an empty part, more than two
    /// parts, an unclosed quote and the NUL character (which no server
    /// allows in a name).
    pub fn parse(text: &str) -> Result<TableName, String> {
        if text.contains('\0') {
            return Err(format!(
                "table name {text:?} holds a NUL character, which no server allows"
            ));
        }
        let mut parts = Vec::new();
        let mut chars = text.chars().peekable();
        loop {
            let close = match chars.peek() {
                Some('"') => Some('"'),
                Some('`') => Some('`'),
                Some('[') => Some(']'),
                _ => None,
            };
            let mut part = String::new();
            match close {
                Some(close) => {
                    chars.next();
                    loop {
                        match chars.next() {
                            Some(c) if c == close => {
                                if chars.peek() == Some(&close) {
                                    chars.next();
                                    part.push(c);
                                } else {
                                    break;
                                }
                            }
                            Some(c) => part.push(c),
                            None => {
                                return Err(format!(
                                    "table name {text:?} opens a quote it does not close (write a quote inside a quoted name twice)"
                                ));
                            }
                        }
                    }
                    if !matches!(chars.peek(), None | Some('.')) {
                        return Err(format!(
                            "table name {text:?}: a quoted part must be followed by '.' or the end"
                        ));
                    }
                }
                None => {
                    while let Some(&c) = chars.peek() {
                        if c == '.' {
                            break;
                        }
                        part.push(c);
                        chars.next();
                    }
                }
            }
            if part.is_empty() {
                return Err(format!("table name {text:?} has an empty part"));
            }
            parts.push(part);
            match chars.next() {
                Some('.') => continue,
                _ => break,
            }
        }
        match <[String; 2]>::try_from(parts) {
            Ok([schema, name]) => Ok(TableName {
                schema: Some(schema),
                name,
            }),
            Err(mut parts) if parts.len() == 1 => Ok(TableName {
                schema: None,
                name: parts.remove(0),
            }),
            Err(_) => Err(format!(
                "table name {text:?} has more than two parts: write NAME or SCHEMA.NAME, and quote a name that holds a dot (\"a.b\")"
            )),
        }
    }

    /// The name for a statement, each part quoted by `q`; `default_schema`
    /// fills in a schema the user left out (SQL Server's `dbo`).
    pub fn quoted(&self, q: Quote, default_schema: Option<&str>) -> String {
        match self.schema.as_deref().or(default_schema) {
            Some(s) => format!("{}.{}", q.ident(s), q.ident(&self.name)),
            None => q.ident(&self.name),
        }
    }
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
    /// The statement, with a table's name quoted by `q` (schema defaulting
    /// to `default_schema`), or the user's query once it passes
    /// [`check_query`].
    pub fn to_sql(&self, q: Quote, default_schema: Option<&str>) -> Result<String, String> {
        match self {
            Select::Table(t) => Ok(format!(
                "SELECT * FROM {}",
                TableName::parse(t)?.quoted(q, default_schema)
            )),
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
    fn any_table_name_is_one_quoted_name() {
        let q = |t: &str, quote| TableName::parse(t).map(|n| n.quoted(quote, None));
        assert_eq!(q("items", Quote::Double).unwrap(), "\"items\"");
        assert_eq!(
            q("public.items", Quote::Double).unwrap(),
            "\"public\".\"items\""
        );
        // Whatever the name holds stays inside one quoted identifier.
        assert_eq!(
            q("x; DROP TABLE y", Quote::Double).unwrap(),
            "\"x; DROP TABLE y\""
        );
        assert_eq!(q("a\"b", Quote::Double).unwrap(), "\"a\"\"b\"");
        assert_eq!(q("a`b", Quote::Backtick).unwrap(), "`a``b`");
        assert_eq!(q("a]b", Quote::Bracket).unwrap(), "[a]]b]");
        assert_eq!(
            TableName::parse("Order Details")
                .unwrap()
                .quoted(Quote::Bracket, Some("dbo")),
            "[dbo].[Order Details]"
        );
        assert_eq!(q("Ümlaut Tä", Quote::Backtick).unwrap(), "`Ümlaut Tä`");
        // A dot inside the user's quotes (any server's style) is part of a name.
        for given in [
            "\"a.b\".\"c d\"",
            "`a.b`.`c d`",
            "[a.b].[c d]",
            "\"a.b\".c d",
        ] {
            assert_eq!(
                TableName::parse(given).unwrap(),
                TableName {
                    schema: Some("a.b".into()),
                    name: "c d".into()
                },
                "{given}"
            );
        }
        assert_eq!(
            TableName::parse("\"Odd \"\"Items\"\"\"").unwrap().name,
            "Odd \"Items\""
        );
        assert_eq!(TableName::parse("[x]]y]").unwrap().name, "x]y");
        for bad in [
            "", "a..b", "a.b.c", ".a", "a.", "\"open", "\"a\"b", "a\0b", "[x",
        ] {
            assert!(TableName::parse(bad).is_err(), "{bad:?}");
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
