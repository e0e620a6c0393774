//! SQL text with values written in as literals, for the applier's batched
//! writes: many statements in one round trip instead of a prepare and an
//! execute per statement.
//!
//! Every value goes through one of the methods here; none is pasted in
//! raw. Free text is a single-quoted literal with `\`, `'`, NUL, CR, LF and
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

/// SQL under construction.
#[derive(Debug, Default)]
pub struct Sql {
    text: String,
}

impl Sql {
    pub fn new() -> Sql {
        Sql::default()
    }

    /// Appends SQL written by this program (never data).
    pub fn push(&mut self, sql: &str) -> &mut Sql {
        self.text.push_str(sql);
        self
    }

    /// Text of any content, as an escaped `'…'` literal.
    pub fn text(&mut self, value: &str) -> &mut Sql {
        self.text.reserve(value.len() + 2);
        self.text.push('\'');
        for c in value.chars() {
            match c {
                '\0' => self.text.push_str("\\0"),
                '\n' => self.text.push_str("\\n"),
                '\r' => self.text.push_str("\\r"),
                '\x1a' => self.text.push_str("\\Z"),
                '\\' | '\'' => {
                    self.text.push('\\');
                    self.text.push(c);
                }
                c => self.text.push(c),
            }
        }
        self.text.push('\'');
        self
    }

    /// An identifier-like value (UUIDs, enum names): the same as
    /// [`Sql::text`], named for what it carries.
    pub fn ascii(&mut self, value: &str) -> &mut Sql {
        self.text(value)
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

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn into_string(self) -> String {
        self.text
    }
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
    fn lists_and_nulls_render_as_sql() {
        let mut sql = Sql::new();
        sql.push("IN ").list([1u64, 2, 3], |s, v| {
            s.uint(v);
        });
        sql.push(" ").date(None).push(" ").optional_text(None);
        assert_eq!(sql.as_str(), "IN (1, 2, 3) NULL NULL");
    }
}
