//! SQL text with values written in as literals, for the applier's batched
//! writes: many statements in one round trip instead of a prepare and an
//! execute per statement.
//!
//! Every value goes through one of the methods here; none is pasted in
//! raw. Free text is sent as a hex literal with a charset introducer
//! (`_utf8mb4 X'…'`), which no `sql_mode` and no byte in the text can
//! turn into SQL. Doubles are written in exponent form with the shortest
//! digits that round-trip, which MySQL and MariaDB parse as a DOUBLE
//! literal, correctly rounded: the stored value is bit-for-bit the one
//! the state machine computed, on every node.

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

    /// Text of any content, as `_utf8mb4 X'…'`.
    pub fn text(&mut self, value: &str) -> &mut Sql {
        self.text.push_str("_utf8mb4 X'");
        for byte in value.as_bytes() {
            // Writing to a String cannot fail.
            let _ = write!(self.text, "{byte:02X}");
        }
        self.text.push('\'');
        self
    }

    /// An identifier-like value (UUIDs, enum names) as a plain `'…'`
    /// literal; anything else falls back to [`Sql::text`].
    pub fn ascii(&mut self, value: &str) -> &mut Sql {
        let plain = value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if plain {
            self.text.push('\'');
            self.text.push_str(value);
            self.text.push('\'');
            self
        } else {
            self.text(value)
        }
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
    fn text_becomes_a_hex_literal_whatever_it_holds() {
        let mut sql = Sql::new();
        sql.text("it's \\ \"x\"; DROP TABLE tasks; --\0é");
        let out = sql.into_string();
        assert!(out.starts_with("_utf8mb4 X'"), "{out}");
        assert!(!out[11..].contains(['\\', '"', ';', ' ']), "{out}");
        assert!(out.ends_with("C3A9'"), "é is two UTF-8 bytes: {out}");
    }

    #[test]
    fn plain_ids_stay_readable_and_others_are_hex() {
        let mut sql = Sql::new();
        sql.ascii("0192f0c4-0000-7000-8000-000000000000")
            .push(" ")
            .ascii("o'clock");
        assert_eq!(
            sql.as_str(),
            "'0192f0c4-0000-7000-8000-000000000000' _utf8mb4 X'6F27636C6F636B'"
        );
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
