//! Full-text search: the words of a query, and the ranked search over the
//! FULLTEXT index on `tasks (title, description)` (sql/V7__search.sql).
//!
//! The user's text never reaches MariaDB's boolean-mode parser as typed:
//! it is cut into words (letters, digits and `_`, as InnoDB's parser cuts
//! the indexed text), words InnoDB does not index are dropped (shorter than
//! `innodb_ft_min_token_size`, longer than `innodb_ft_max_token_size`, or
//! one of its default stopwords: a required stopword would match nothing),
//! and each remaining word is sent as `+word*`. So operators (`+-*"~@<>()`)
//! are only separators, no query is a syntax error, and a query means:
//! every word, each as a word or the start of one, in the title or the
//! description.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;

use mysql_async::prelude::*;
use mysql_async::{Pool, TxOpts, Value};

use super::queries::BadCursor;
use super::rows::{task_from_row, TASK_COLUMNS};
use super::sql::Sql;
use super::DbError;
use crate::task::{Task, TaskId};

/// InnoDB's defaults (`innodb_ft_min_token_size`, `_max_token_size`).
pub const MIN_WORD_CHARS: usize = 3;
pub const MAX_WORD_CHARS: usize = 84;
/// The longest query text accepted, in characters.
pub const MAX_QUERY_CHARS: usize = 500;
/// The most words a query may have.
pub const MAX_WORDS: usize = 16;

/// `INFORMATION_SCHEMA.INNODB_FT_DEFAULT_STOPWORD` (MariaDB 10.11 and
/// MySQL 8.0 ship the same list).
pub const STOPWORDS: [&str; 36] = [
    "a", "about", "an", "are", "as", "at", "be", "by", "com", "de", "en", "for", "from", "how",
    "i", "in", "is", "it", "la", "of", "on", "or", "that", "the", "this", "to", "was", "what",
    "when", "where", "who", "will", "with", "und", "the", "www",
];

/// Why a query text cannot be searched.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum BadQuery {
    #[error("is longer than {MAX_QUERY_CHARS} characters")]
    TooLong,
    #[error(
        "has no word to search for: words are letters, digits and _, of {MIN_WORD_CHARS} to {MAX_WORD_CHARS} characters, and not a stopword such as `the` or `with`"
    )]
    NoWords,
    #[error("has more than {MAX_WORDS} words")]
    TooManyWords,
}

/// The searchable words of a query, lower-cased, each once, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Words(Vec<String>);

impl Words {
    pub fn parse(text: &str) -> Result<Words, BadQuery> {
        if text.chars().count() > MAX_QUERY_CHARS {
            return Err(BadQuery::TooLong);
        }
        let mut words: Vec<String> = Vec::new();
        for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            let chars = word.chars().count();
            if !(MIN_WORD_CHARS..=MAX_WORD_CHARS).contains(&chars) {
                continue;
            }
            let word = word.to_lowercase();
            if STOPWORDS.contains(&word.as_str()) || words.contains(&word) {
                continue;
            }
            words.push(word);
        }
        if words.is_empty() {
            return Err(BadQuery::NoWords);
        }
        if words.len() > MAX_WORDS {
            return Err(BadQuery::TooManyWords);
        }
        Ok(Words(words))
    }

    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The boolean-mode query: `+word*` for each word. Words hold only
    /// letters, digits and `_`, none of which is an operator.
    pub fn boolean(&self) -> String {
        self.0
            .iter()
            .map(|w| format!("+{w}*"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Where a ranked page ended: the relevance of its last task, and its id.
#[derive(Clone, Debug, PartialEq)]
pub struct RankCursor {
    pub score: f64,
    pub id: TaskId,
}

impl fmt::Display for RankCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "r~{}~{}", self.score, self.id)
    }
}

impl FromStr for RankCursor {
    type Err = BadCursor;
    fn from_str(text: &str) -> Result<RankCursor, Self::Err> {
        let rest = text.strip_prefix("r~").ok_or(BadCursor)?;
        let (score, id) = rest.split_once('~').ok_or(BadCursor)?;
        let score: f64 = score.parse().map_err(|_| BadCursor)?;
        if !score.is_finite() {
            return Err(BadCursor);
        }
        Ok(RankCursor {
            score,
            id: id.parse().map_err(|_| BadCursor)?,
        })
    }
}

/// One ranked page.
#[derive(Debug)]
pub struct SearchPage {
    pub hits: Vec<(Task, f64)>,
    pub next: Option<RankCursor>,
    pub last_seq: u64,
}

/// The ranked search statement: the ids and scores of the tasks matching
/// every word, most relevant first (InnoDB's relevance, then id), after
/// `after`. Only (id, score) is sorted: a sort or derived table holding the
/// rows' text would go to an on-disk temporary table (MEDIUMTEXT), and
/// MariaDB 10.11.19 crashed freeing one under concurrent searches (a
/// segfault in `ha_maria::drop_table`, seen on 730,000 tasks). The page's
/// rows are read by id afterwards ([`rows_statement`]).
pub fn search_statement(
    words: &Words,
    after: Option<&RankCursor>,
    limit: usize,
) -> (String, Vec<Value>) {
    let query = words.boolean();
    let mut sql = Sql::new();
    let mut params: Vec<Value> = Vec::new();
    sql.push(
        "SELECT id, MATCH (title, description) AGAINST (? IN BOOLEAN MODE) AS score FROM tasks \
         WHERE MATCH (title, description) AGAINST (? IN BOOLEAN MODE)",
    );
    params.push(query.clone().into());
    params.push(query.into());
    if let Some(cursor) = after {
        sql.push(" HAVING score < ? OR (score = ? AND id > ?)");
        params.extend([
            cursor.score.into(),
            cursor.score.into(),
            cursor.id.to_string().into(),
        ]);
    }
    sql.push(" ORDER BY score DESC, id LIMIT ?");
    params.push((limit as u64).into());
    (sql.into_string(), params)
}

/// The tasks with these ids (at most 101: a page and one), by primary key.
pub fn rows_statement(ids: &[String]) -> (String, Vec<Value>) {
    let mut sql = Sql::new();
    sql.push("SELECT ")
        .push(TASK_COLUMNS)
        .push(" FROM tasks WHERE id IN (")
        .marks(ids.len())
        .push(")");
    (
        sql.into_string(),
        ids.iter().map(|id| id.clone().into()).collect(),
    )
}

/// A ranked page of the tasks matching `words`, read in one consistent
/// snapshot with the last seq it reflects.
pub async fn search(
    pool: &Pool,
    words: &Words,
    after: Option<&RankCursor>,
    limit: usize,
) -> Result<SearchPage, DbError> {
    let (sql, params) = search_statement(words, after, limit + 1);
    let mut conn = pool.get_conn().await?;
    let mut snapshot = TxOpts::default();
    snapshot
        .with_consistent_snapshot(true)
        .with_readonly(Some(true));
    let mut tx = conn.start_transaction(snapshot).await?;
    let ranked: Vec<(String, f64)> = tx.exec(sql, params).await?;
    let mut rows: Vec<mysql_async::Row> = Vec::new();
    if !ranked.is_empty() {
        let ids: Vec<String> = ranked.iter().map(|(id, _)| id.clone()).collect();
        let (sql, params) = rows_statement(&ids);
        rows = tx.exec(sql, params).await?;
    }
    let last_seq = super::applied_state(&mut tx).await?.last_seq;
    tx.commit().await?;
    let mut tasks: HashMap<TaskId, Task> = HashMap::with_capacity(rows.len());
    for row in rows {
        let task = task_from_row(row)?;
        tasks.insert(task.id, task);
    }
    let mut hits = Vec::with_capacity(ranked.len());
    for (id, score) in ranked {
        let id: TaskId = id
            .parse()
            .map_err(|_| DbError::Corrupt(format!("tasks.id `{id}`")))?;
        // Both reads are in one snapshot: every ranked id has its row.
        let task = tasks
            .remove(&id)
            .ok_or_else(|| DbError::Corrupt(format!("ranked task {id} has no row")))?;
        hits.push((task, score));
    }
    let next = if hits.len() > limit {
        hits.truncate(limit);
        hits.last().map(|(task, score)| RankCursor {
            score: *score,
            id: task.id,
        })
    } else {
        None
    };
    Ok(SearchPage {
        hits,
        next,
        last_seq,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operators_and_symbols_are_separators_never_syntax() {
        let words = Words::parse("+deploy -\"pipeline\" ~@<>()* back\\slash 🚀db").unwrap();
        assert_eq!(words.as_slice(), ["deploy", "pipeline", "back", "slash"]);
        assert_eq!(words.boolean(), "+deploy* +pipeline* +back* +slash*");
        for text in [
            "",
            "   ",
            "+-*\"~@<>()",
            "🚀🚀",
            "\\\\",
            "a b c",
            "the with about",
            "ab",
        ] {
            assert_eq!(Words::parse(text), Err(BadQuery::NoWords), "{text:?}");
        }
        assert_eq!(Words::parse(&"x".repeat(10_000)), Err(BadQuery::TooLong));
        let many: Vec<String> = (0..17).map(|i| format!("word{i}")).collect();
        assert_eq!(Words::parse(&many.join(" ")), Err(BadQuery::TooManyWords));
    }

    #[test]
    fn words_are_lower_cased_once_each_and_keep_letters_of_any_script() {
        let words = Words::parse("Deploy DEPLOY ünïcödé foo_bar 中文字").unwrap();
        assert_eq!(words.as_slice(), ["deploy", "ünïcödé", "foo_bar", "中文字"]);
    }

    #[test]
    fn rank_cursors_round_trip_exactly() {
        let cursor = RankCursor {
            score: 0.147_650_599_479_675_3,
            id: TaskId::generate(),
        };
        assert_eq!(cursor.to_string().parse::<RankCursor>(), Ok(cursor));
        for bad in [
            "",
            "r~",
            "r~x~y",
            "r~inf~0192f0c4-0000-7000-8000-000000000000",
            "todo~1~x",
        ] {
            assert!(bad.parse::<RankCursor>().is_err(), "{bad}");
        }
    }
}
