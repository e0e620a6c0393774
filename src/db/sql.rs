//! SQL text with values written in as literals, for the applier's batched
//! writes: many statements in one round trip instead of a prepare and an
//! execute per statement.
//!
//! Safe by construction: SQL text can only be appended as a `&'static str`
//! ([`Sql::push`]), so it is always text written in this program; every
//! value goes through one of the escaping writers here; none is pasted in
//! raw.
//!
//! Bounded by construction: a batch is a list of statements
//! ([`Sql::end`]), multi-row INSERTs are cut by the bytes of SQL they
//! hold ([`Sql::rows`]), and [`round_trips`] packs statements into queries
//! of at most a given number of bytes, measured on the SQL actually built. Free text is a single-quoted literal with `\`, `'`, NUL, CR, LF and
//! ^Z escaped the way MySQL reads them when backslash escapes are on. Every
//! connection the node opens sets its `sql_mode` when it connects
//! ([`crate::db::SESSION_INIT`]: strict, and without `NO_BACKSLASH_ESCAPES`,
//! which would change the meaning of `\`), so a query built here may rely
//! on it. A `"` needs no escape inside single quotes; leaving it as is keeps
//! the JSON in event payloads half the size to parse.
//! Doubles are written in exponent form with the shortest digits that
//! round-trip, which MySQL and MariaDB parse as a DOUBLE literal, correctly
//! rounded: the stored value is bit-for-bit the one the state machine
//! computed, on every node.

use std::fmt::Write as _;

use crate::time::{Date, Timestamp};

/// SQL under construction: finished statements, and the one being written.
#[derive(Debug, Default)]
pub struct Sql {
    done: Vec<String>,
    text: String,
}

impl Sql {
    pub fn new() -> Sql {
        Sql::default()
    }

    /// Appends SQL written by this program (never data: only a `'static`
    /// string is accepted, so a value cannot be pasted in by mistake).
    pub fn push(&mut self, sql: &'static str) -> &mut Sql {
        self.text.push_str(sql);
        self
    }

    /// Ends the statement being written (without a `;`).
    pub fn end(&mut self) -> &mut Sql {
        if !self.text.is_empty() {
            self.done.push(std::mem::take(&mut self.text));
        }
        self
    }

    /// Writes `items` as multi-row statements `head (row), (row)… tail`,
    /// each ended: a statement grows past `limit` bytes only when a single
    /// row does (`limit` 0 gives one statement per row).
    pub fn rows<T>(
        &mut self,
        limit: usize,
        head: &[&'static str],
        tail: &'static str,
        items: impl IntoIterator<Item = T>,
        mut row: impl FnMut(&mut Sql, T),
    ) -> &mut Sql {
        self.end();
        let mut in_statement = 0;
        for item in items {
            let before = self.text.len();
            if in_statement == 0 {
                self.head(head);
            } else {
                self.push(", ");
            }
            let start = self.text.len();
            row(self, item);
            if in_statement > 0 && self.text.len() + tail.len() > limit {
                // Too big with this row: end the statement before it and
                // start the next one with it.
                let written = self.text.split_off(start);
                self.text.truncate(before);
                self.push(tail).end().head(head);
                self.text.push_str(&written);
                in_statement = 0;
            }
            in_statement += 1;
        }
        if in_statement > 0 {
            self.push(tail).end();
        }
        self
    }

    fn head(&mut self, pieces: &[&'static str]) -> &mut Sql {
        for piece in pieces {
            self.push(piece);
        }
        self
    }

    /// `?, ?, …` (`n` placeholders), for a prepared IN-list.
    pub fn marks(&mut self, n: usize) -> &mut Sql {
        for i in 0..n {
            self.push(if i == 0 { "?" } else { ", ?" });
        }
        self
    }

    /// Text of any content, as an escaped `'…'` literal.
    pub fn text(&mut self, value: &str) -> &mut Sql {
        self.text.reserve(value.len() + 2);
        self.text.push('\'');
        // Runs of plain bytes are copied whole (every byte escaped is
        // ASCII, so each cut falls between characters).
        let mut plain = 0;
        for (i, byte) in value.bytes().enumerate() {
            let escaped = match byte {
                b'\0' => "\\0",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\x1a' => "\\Z",
                b'\\' => "\\\\",
                b'\'' => "\\'",
                _ => continue,
            };
            self.text.push_str(&value[plain..i]);
            self.text.push_str(escaped);
            plain = i + 1;
        }
        self.text.push_str(&value[plain..]);
        self.text.push('\'');
        self
    }

    /// An identifier-like value (UUIDs, enum names): the same as
    /// [`Sql::text`], named for what it carries.
    pub fn ascii(&mut self, value: &str) -> &mut Sql {
        self.text(value)
    }

    /// A name as a `` `quoted` `` identifier (a backtick inside is doubled).
    pub fn identifier(&mut self, name: &str) -> &mut Sql {
        self.text.push('`');
        for c in name.chars() {
            if c == '`' {
                self.text.push('`');
            }
            self.text.push(c);
        }
        self.text.push('`');
        self
    }

    pub fn uint(&mut self, value: u64) -> &mut Sql {
        let _ = write!(self.text, "{value}");
        self
    }

    /// A finite double in exponent form (`1.0245e3`), parsed as a DOUBLE.
    pub fn double(&mut self, value: f64) -> &mut Sql {
        assert!(value.is_finite(), "only finite doubles are stored");
        let _ = write!(self.text, "{value:e}");
        self
    }

    pub fn timestamp(&mut self, at: Timestamp) -> &mut Sql {
        let _ = write!(self.text, "'{}'", at.to_sql());
        self
    }

    pub fn date(&mut self, date: Option<Date>) -> &mut Sql {
        match date {
            Some(date) => {
                let _ = write!(self.text, "'{date}'");
            }
            None => self.text.push_str("NULL"),
        }
        self
    }

    pub fn optional_text(&mut self, value: Option<&str>) -> &mut Sql {
        match value {
            Some(value) => self.text(value),
            None => self.push("NULL"),
        }
    }

    /// `(a, b, c)` with each item written by `write`.
    pub fn list<T>(
        &mut self,
        items: impl IntoIterator<Item = T>,
        mut write: impl FnMut(&mut Sql, T),
    ) -> &mut Sql {
        self.text.push('(');
        for (i, item) in items.into_iter().enumerate() {
            if i > 0 {
                self.text.push_str(", ");
            }
            write(self, item);
        }
        self.text.push(')');
        self
    }

    /// The statement being written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Everything written, statements joined by `;\n`.
    pub fn into_string(mut self) -> String {
        self.end();
        self.done.join(";\n")
    }

    /// The statements written, in order.
    pub fn into_statements(mut self) -> Vec<String> {
        self.end();
        self.done
    }
}

/// Packs `statements` in order into multi-statement queries of at most
/// `budget` bytes each (a statement longer than that on its own goes alone).
/// `budget` 0 sends one statement per round trip.
pub fn round_trips(statements: Vec<String>, budget: usize) -> Vec<String> {
    let mut trips: Vec<String> = Vec::new();
    let mut current = String::new();
    for statement in statements {
        if !current.is_empty() && current.len() + 2 + statement.len() > budget {
            trips.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            current = statement;
        } else {
            current.push_str(";\n");
            current.push_str(&statement);
        }
    }
    if !current.is_empty() {
        trips.push(current);
    }
    trips
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_quoted_with_every_special_character_escaped_but_double_quotes() {
        let mut sql = Sql::new();
        sql.text("it's \\ \"x\"; DROP TABLE tasks; --\0\n\r\x1aé");
        assert_eq!(
            sql.as_str(),
            "'it\\'s \\\\ \"x\"; DROP TABLE tasks; --\\0\\n\\r\\Zé'"
        );
    }

    #[test]
    fn an_unescaped_quote_never_ends_a_literal_early() {
        for nasty in ["'", "\\'", "\\\\'", "'\\", "\\", "a\\'b'c"] {
            let mut sql = Sql::new();
            sql.text(nasty);
            let inner = &sql.as_str()[1..sql.as_str().len() - 1];
            // Walk the literal as MySQL does: a backslash takes the next char.
            let mut chars = inner.chars();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => assert!(chars.next().is_some(), "{nasty}: dangling escape"),
                    '\'' => panic!("{nasty}: an unescaped quote in {}", sql.as_str()),
                    _ => {}
                }
            }
        }
    }

    #[test]
    fn text_unescapes_to_what_was_written_whatever_the_mix_of_characters() {
        // MySQL's reading of a literal: a backslash and the char after it.
        fn unescape(literal: &str) -> String {
            let mut out = String::new();
            let mut chars = literal[1..literal.len() - 1].chars();
            while let Some(c) = chars.next() {
                if c != '\\' {
                    out.push(c);
                    continue;
                }
                out.push(match chars.next().expect("a dangling escape") {
                    '0' => '\0',
                    'n' => '\n',
                    'r' => '\r',
                    'Z' => '\x1a',
                    other => other,
                });
            }
            out
        }
        let pieces = [
            "", "a", "é", "🦀", "\\", "'", "\"", "\0", "\n", "\r", "\x1a", "`", "%_",
        ];
        let mut written = 0;
        for a in pieces {
            for b in pieces {
                for c in pieces {
                    for value in [format!("{a}{b}{c}"), format!("{a}x{b}{c}{c}🎉{a}")] {
                        let mut sql = Sql::new();
                        sql.text(&value);
                        assert_eq!(unescape(sql.as_str()), value, "{:?}", sql.as_str());
                        written += 1;
                    }
                }
            }
        }
        assert_eq!(written, 2 * pieces.len().pow(3));
        // 20,000 characters of Markdown full of backslashes and emoji.
        let long = "\\*ré* 🦀 `a\\'b` \"q\"\n".repeat(1_000);
        let mut sql = Sql::new();
        sql.text(&long);
        assert_eq!(unescape(sql.as_str()), long);
    }

    #[test]
    fn doubles_are_written_with_round_trip_digits() {
        for value in [
            0.0,
            -0.0,
            1024.0,
            1024.5,
            0.1 + 0.2,
            1e15,
            -3.25e-7,
            f64::MIN_POSITIVE,
        ] {
            let mut sql = Sql::new();
            sql.double(value);
            let back: f64 = sql.as_str().parse().unwrap();
            assert_eq!(
                back.to_bits(),
                value.to_bits(),
                "{value} as {}",
                sql.as_str()
            );
            assert!(
                sql.as_str().contains('e'),
                "exponent form: {}",
                sql.as_str()
            );
        }
    }

    #[test]
    fn rows_are_cut_by_the_bytes_of_sql_built() {
        let items: Vec<String> = (0..50).map(|i| format!("{i:0>20}")).collect();
        for limit in [0, 30, 100, 1000, 100_000] {
            let mut sql = Sql::new();
            sql.rows(limit, &["INSERT INTO t (a) VALUES "], "", &items, |s, v| {
                s.push("(").text(v).push(")");
            });
            let statements = sql.into_statements();
            let mut seen = Vec::new();
            for statement in &statements {
                let rows = statement.matches("('").count();
                assert!(
                    statement.len() <= limit.max(50) || rows == 1,
                    "{limit}: {} bytes with {rows} rows",
                    statement.len()
                );
                assert!(statement.starts_with("INSERT INTO t (a) VALUES ('"));
                seen.extend(statement.split('\'').skip(1).step_by(2).map(str::to_string));
            }
            assert_eq!(seen, items, "every row once, in order, at limit {limit}");
            if limit == 0 {
                assert_eq!(statements.len(), items.len(), "one statement per row");
            }
        }
    }

    #[test]
    fn round_trips_hold_every_statement_within_the_budget() {
        let statements: Vec<String> = (0..40).map(|i| "x".repeat(i * 7 % 50 + 1)).collect();
        for budget in [0, 10, 60, 200, 10_000] {
            let trips = round_trips(statements.clone(), budget);
            for trip in &trips {
                assert!(
                    trip.len() <= budget || !trip.contains(';'),
                    "{budget}: {trip}"
                );
            }
            let back: Vec<String> = trips
                .iter()
                .flat_map(|t| t.split(";\n").map(str::to_string))
                .collect();
            assert_eq!(back, statements);
        }
    }

    #[test]
    fn identifiers_are_quoted_with_backticks_doubled() {
        let mut sql = Sql::new();
        sql.identifier("db").push(" ").identifier("a`b");
        assert_eq!(sql.as_str(), "`db` `a``b`");
    }

    #[test]
    fn lists_and_nulls_render_as_sql() {
        let mut sql = Sql::new();
        sql.push("IN ").list([1u64, 2, 3], |s, v| {
            s.uint(v);
        });
        sql.push(" ").date(None).push(" ").optional_text(None);
        sql.push(" (").marks(3).push(")");
        assert_eq!(sql.as_str(), "IN (1, 2, 3) NULL NULL (?, ?, ?)");
    }
}
