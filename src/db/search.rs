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
//! every word, each as a word or the start of one, in the title and the
//! description, or in one of the card's comments (its own FULLTEXT index,
//! `comments_text`, sql/V20__comment_search.sql).
//!
//! Ranking (see [`search`]): InnoDB's FULLTEXT relevance over every match
//! when some word is uncommon; when every word is common (in about
//! [`COMMON_MATCHES`] tasks or more, which InnoDB would all rank before the
//! LIMIT), the matches among the newest tasks (as many as hold about
//! [`NEWEST_MATCHES`] matches, at most [`WINDOW`]), by how often the words
//! occur. How common a word is gets measured once and remembered a while
//! by the node's [`Planner`]. A word checked by regular
//! expression (a common word) matches case-insensitively but, unlike the
//! FULLTEXT index, does not fold accents.
//! The boards the user may see are part of the query, so every page is
//! full while more visible matches exist.

use std::collections::HashMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mysql_async::prelude::*;
use mysql_async::{Pool, TxOpts, Value};

use super::queries::BadCursor;
use super::rows::{task_from_row, TASK_COLUMNS};
use super::sql::Sql;
use super::DbError;
use crate::task::{BoardId, Task, TaskId};

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

    /// The boolean-mode query of the words not in `mask` (bit i: the i-th
    /// word); empty when every word is in it.
    pub fn boolean_without(&self, mask: u16) -> String {
        self.0
            .iter()
            .enumerate()
            .filter(|(i, _)| mask & (1 << i) == 0)
            .map(|(_, w)| format!("+{w}*"))
            .collect::<Vec<_>>()
            .join(" ")
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

/// How a query's matches are found and ranked, chosen from how common its
/// words are (see [`search`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Plan {
    /// The FULLTEXT index finds and ranks the tasks with the words not in
    /// `common` (bit i: the i-th word); the words in `common` (each in
    /// about [`COMMON_MATCHES`] tasks or more) are required by a regular
    /// expression on the rows the index found. At least one word
    /// is not common.
    Fulltext { common: u16 },
    /// Every word is common: the matches among the tasks from `from` (by
    /// id, so by creation time) onwards, the newest `window` tasks when
    /// the search began (at most [`WINDOW`]: as many as hold about
    /// [`NEWEST_MATCHES`] matches), ranked by occurrences (see [`search`]).
    Newest { from: TaskId, window: usize },
}

impl Plan {
    /// Whether this plan can be the plan of a query of `words`.
    pub fn fits(&self, words: &Words) -> bool {
        match self {
            Plan::Fulltext { common } => {
                let all = (1u32 << words.0.len()) - 1;
                u32::from(*common) & !all == 0 && u32::from(*common) != all
            }
            Plan::Newest { .. } => true,
        }
    }
}

/// How a search reads the comments, chosen from how common its words are
/// among them (see [`search`]); the cards' [`Plan`] is chosen apart.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CommentPlan {
    /// The comments' FULLTEXT index finds the comments with the words not
    /// in `common` (bit i: the i-th word; each in about
    /// [`COMMON_MATCHES`] comments or more), which are required by a
    /// regular expression on the comments it found. At least one word is
    /// not common.
    Index { common: u16 },
    /// Every word is common among the comments: only the comments from
    /// `from` (by id, so by time) onwards are read, the newest `window`
    /// when the search began (as many as hold about [`NEWEST_MATCHES`]
    /// matches, at most [`WINDOW`]), each word by regular expression.
    Newest { from: String, window: usize },
}

impl Default for CommentPlan {
    fn default() -> CommentPlan {
        CommentPlan::Index { common: 0 }
    }
}

impl CommentPlan {
    /// Whether this can be the comment plan of a query of `words`.
    pub fn fits(&self, words: &Words) -> bool {
        match self {
            CommentPlan::Index { common } => Plan::Fulltext { common: *common }.fits(words),
            CommentPlan::Newest { .. } => true,
        }
    }
}

/// Where a ranked page ended: the relevance of its last task, its id, and
/// the plans of the search (every page of a search is ranked the same way).
#[derive(Clone, Debug, PartialEq)]
pub struct RankCursor {
    pub score: f64,
    pub id: TaskId,
    pub plan: Plan,
    pub comments: CommentPlan,
}

impl fmt::Display for RankCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.plan {
            Plan::Fulltext { common: 0 } => write!(f, "r~{}~{}", self.score, self.id)?,
            Plan::Fulltext { common } => write!(f, "r~{}~{}~c{common}", self.score, self.id)?,
            Plan::Newest { from, window } => {
                write!(f, "w~{}~{}~{from}~{window}", self.score, self.id)?
            }
        }
        // The comments' plan, when not the default (a cursor from before
        // comments had plans has none).
        match &self.comments {
            CommentPlan::Index { common: 0 } => Ok(()),
            CommentPlan::Index { common } => write!(f, "!k{common}"),
            CommentPlan::Newest { from, window } => write!(f, "!n{from}.{window}"),
        }
    }
}

impl FromStr for CommentPlan {
    type Err = BadCursor;
    fn from_str(text: &str) -> Result<CommentPlan, Self::Err> {
        if let Some(mask) = text.strip_prefix('k') {
            return Ok(CommentPlan::Index {
                common: mask.parse().map_err(|_| BadCursor)?,
            });
        }
        let (from, window) = text
            .strip_prefix('n')
            .and_then(|rest| rest.split_once('.'))
            .ok_or(BadCursor)?;
        let from = uuid::Uuid::parse_str(from).map_err(|_| BadCursor)?;
        Ok(CommentPlan::Newest {
            from: from.to_string(),
            window: window.parse().map_err(|_| BadCursor)?,
        })
    }
}

impl FromStr for RankCursor {
    type Err = BadCursor;
    fn from_str(text: &str) -> Result<RankCursor, Self::Err> {
        let (text, comments) = match text.split_once('!') {
            Some((text, comments)) => (text, comments.parse()?),
            None => (text, CommentPlan::default()),
        };
        let (kind, rest) = text.split_once('~').ok_or(BadCursor)?;
        let mut parts = rest.splitn(3, '~');
        let score: f64 = parts
            .next()
            .ok_or(BadCursor)?
            .parse()
            .map_err(|_| BadCursor)?;
        if !score.is_finite() {
            return Err(BadCursor);
        }
        let id = parts
            .next()
            .ok_or(BadCursor)?
            .parse()
            .map_err(|_| BadCursor)?;
        let plan = match (kind, parts.next()) {
            ("r", None) => Plan::Fulltext { common: 0 },
            ("r", Some(mask)) => Plan::Fulltext {
                common: mask
                    .strip_prefix('c')
                    .and_then(|m| m.parse().ok())
                    .ok_or(BadCursor)?,
            },
            ("w", Some(rest)) => {
                // A cursor from before windows fitted to the words: WINDOW.
                let (from, window) = match rest.split_once('~') {
                    Some((from, window)) => (from, window.parse().map_err(|_| BadCursor)?),
                    None => (rest, WINDOW),
                };
                Plan::Newest {
                    from: from.parse().map_err(|_| BadCursor)?,
                    window,
                }
            }
            _ => return Err(BadCursor),
        };
        Ok(RankCursor {
            score,
            id,
            plan,
            comments,
        })
    }
}

/// The boards whose tasks a search may answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every board (a site admin, who sees them all).
    All,
    /// Only these (the boards the user is on, or the one asked for).
    Boards(Vec<BoardId>),
}

/// Which page of a search: the one after `after` (the first: `None`), of
/// at most `limit` hits.
#[derive(Clone, Copy, Debug)]
pub struct Page<'a> {
    pub after: Option<&'a RankCursor>,
    pub limit: usize,
}

/// A task a search found.
#[derive(Debug)]
pub struct Hit {
    pub task: Task,
    /// Its relevance (see [`search`]).
    pub score: f64,
    /// Whether only its comments hold the words (not its title and
    /// description).
    pub in_comments: bool,
}

/// One ranked page.
#[derive(Debug)]
pub struct SearchPage {
    pub hits: Vec<Hit>,
    pub next: Option<RankCursor>,
    pub last_seq: u64,
    /// How the tasks were searched (the first page's choice).
    pub plan: Plan,
    /// How their comments were.
    pub comments: CommentPlan,
}

/// How many of the newest tasks [`Plan::Newest`] ranks.
pub const WINDOW: usize = 20_000;
/// About how many matches [`Plan::Newest`] ranks: its window is the newest
/// tasks that hold about this many, by the words' shares of the [`PROBE`]
/// newest tasks (a word in a third of the tasks: the newest 1,500; the
/// whole [`WINDOW`] for a word in under 2.5 %). Reading fewer rows' text
/// is what makes a search of very common words cheap.
pub const NEWEST_MATCHES: usize = 500;
/// How many of the newest tasks tell how common a word is.
pub const PROBE: usize = 2_000;
/// A word is common when about this many tasks or more have it (its share
/// of the [`PROBE`] newest tasks times the table's estimated rows): the
/// FULLTEXT index would read, and InnoDB rank, every one of its matches,
/// whatever the LIMIT (on 1,000,000 tasks, about 1.5 ms a thousand in the
/// index and 4 ms a thousand with their rows).
pub const COMMON_MATCHES: u64 = 5_000;
/// How much a word in the title weighs in [`Plan::Newest`]'s score, against one
/// occurrence in the description.
pub const TITLE_WEIGHT: u32 = 3;

/// The regular expression of `word` as the FULLTEXT search means it: the
/// word or the start of one (not preceded by a letter, digit or `_`), in
/// any case. Words hold only letters, digits and `_`: nothing to escape.
pub fn pattern(word: &str) -> String {
    format!("(?i)(?<![[:alnum:]_]){word}")
}

fn push_scope(sql: &mut Sql, params: &mut Vec<Value>, scope: &Scope) {
    if let Scope::Boards(boards) = scope {
        sql.push(" AND board_id IN (").marks(boards.len()).push(")");
        params.extend(boards.iter().map(|b| b.to_string().into()));
    }
}

/// The list's filters, combined with a search: each narrows the matches
/// (checked on the rows the index finds, like the scope).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SearchFilter {
    pub status: Option<crate::task::Status>,
    pub assignee: Option<String>,
    pub label: Option<String>,
    pub priority: Option<crate::task::Priority>,
    /// `Some(false)`: cards on their boards only; `Some(true)`: archived only.
    pub archived: Option<bool>,
}

fn push_filter(sql: &mut Sql, params: &mut Vec<Value>, filter: &SearchFilter) {
    if let Some(status) = filter.status {
        sql.push(" AND status = ?");
        params.push(status.as_str().into());
    }
    if let Some(assignee) = &filter.assignee {
        sql.push(" AND assignee = ?");
        params.push(assignee.clone().into());
    }
    if let Some(priority) = filter.priority {
        sql.push(" AND priority = ?");
        params.push(priority.as_str().into());
    }
    if let Some(archived) = filter.archived {
        sql.push(" AND archived = ?");
        params.push(u64::from(archived).into());
    }
    if let Some(label) = &filter.label {
        sql.push(
            " AND EXISTS (SELECT 1 FROM task_labels l WHERE l.task_id = tasks.id AND l.label = ?)",
        );
        params.push(label.clone().into());
    }
}

/// The indexes of a query's `n` words in the order their regular
/// expressions are checked: `checks` when it orders all of them (the
/// [`Planner`]'s rarest first), else the query's order. A row without the
/// first word checked costs no more checks, so the rarest word first makes
/// a scan of many rows cheaper (the conditions are ANDed: the rows matched
/// are the same in any order).
pub fn check_order(checks: &[usize], n: usize) -> Vec<usize> {
    let mut sorted = checks.to_vec();
    sorted.sort_unstable();
    if sorted.len() == n && sorted.iter().enumerate().all(|(i, &w)| i == w) {
        checks.to_vec()
    } else {
        (0..n).collect()
    }
}

/// ` AND (title REGEXP ? OR description REGEXP ?)`: the row holds `word`.
fn push_holds(sql: &mut Sql, params: &mut Vec<Value>, word: &str) {
    sql.push(" AND (title REGEXP ? OR description REGEXP ?)");
    params.extend([pattern(word).into(), pattern(word).into()]);
}

/// ` AND comments.body REGEXP ?`: the comment holds `word`.
fn push_comment_holds(sql: &mut Sql, params: &mut Vec<Value>, word: &str) {
    sql.push(" AND comments.body REGEXP ?");
    params.push(pattern(word).into());
}

/// How much a comment's relevance counts against the card's own text: a
/// card whose title has the words ranks above one where only a comment
/// mentions them, other things equal.
pub const COMMENT_WEIGHT: f64 = 0.5;

/// The comments of the cards of `scope` under `filter`: the card's row is
/// `tasks`, so the scope and the filters read as they do on the card.
const COMMENTS_OF_CARDS: &str = " FROM comments JOIN tasks ON tasks.id = comments.task_id";

/// ` UNION ALL SELECT …` the comments holding every word, as `comments`
/// says, of the cards `plan` searches (under [`Plan::Newest`], the newest
/// cards'), each scored as `plan` scores a card (under
/// [`Plan::Fulltext`] with [`CommentPlan::Newest`], which has no index
/// relevance, by occurrences), times [`COMMENT_WEIGHT`]. The scope and the
/// filters come after, on the comment's card.
fn push_comments_branch(
    sql: &mut Sql,
    params: &mut Vec<Value>,
    words: &Words,
    checks: &[usize],
    plan: &Plan,
    comments: &CommentPlan,
) {
    sql.push(" UNION ALL SELECT tasks.id, ");
    match (plan, comments) {
        (Plan::Fulltext { .. }, CommentPlan::Index { common }) => {
            sql.push("MATCH (comments.body) AGAINST (? IN BOOLEAN MODE)");
            params.push(words.boolean_without(*common).into());
        }
        _ => {
            sql.push("CAST(");
            for (i, word) in words.0.iter().enumerate() {
                sql.push(if i == 0 { "" } else { " + " });
                sql.push(
                    "(CHAR_LENGTH(comments.body) \
                     - CHAR_LENGTH(REGEXP_REPLACE(comments.body, ?, ''))) DIV ?",
                );
                params.extend([pattern(word).into(), (word.chars().count() as u64).into()]);
            }
            sql.push(" AS DOUBLE)");
        }
    }
    sql.push(" * ? AS s, 1 AS c").push(COMMENTS_OF_CARDS);
    params.push(COMMENT_WEIGHT.into());
    // The words found through the index, or the newest comments; then the
    // common words by regular expression, the rarest first. Read by
    // regular expression, every comment of the newest cards would be
    // (81,544 comments on the newest 1,000 cards made a one-word search 33
    // times slower); a word in 106,463 comments cost the index 551 ms.
    let common = match comments {
        CommentPlan::Index { common } => {
            sql.push(" WHERE MATCH (comments.body) AGAINST (? IN BOOLEAN MODE)");
            params.push(words.boolean_without(*common).into());
            *common
        }
        CommentPlan::Newest { from, .. } => {
            sql.push(" WHERE comments.id >= ?");
            params.push(from.clone().into());
            u16::MAX
        }
    };
    if let Plan::Newest { from, .. } = plan {
        sql.push(" AND comments.task_id >= ?");
        params.push(from.to_string().into());
    }
    for &i in checks {
        if common & (1 << i) != 0 {
            push_comment_holds(sql, params, &words.0[i]);
        }
    }
}

/// The ranked search statement of a page under `plan`: the ids and scores
/// of the tasks of `scope` matching every word, most relevant first, after
/// `after`, each with 1 when only its comments matched (else 0).
///
/// A card matches when its title and description, or one of its comments,
/// hold every word; its score is the best of the two, a comment's counting
/// [`COMMENT_WEIGHT`]. [`Plan::Fulltext`]: InnoDB's relevance of the
/// FULLTEXT words (`tasks_text`, `comments_text`), then id;
/// [`Plan::Newest`]: the words' occurrences, then the newest first. Only
/// (id, score, where) is kept and sorted: a sort or derived table holding
/// the rows' text would go to an on-disk temporary table (MEDIUMTEXT), and
/// MariaDB 10.11.19 crashed freeing one under concurrent searches (a
/// segfault in `ha_maria::drop_table`, seen on 730,000 tasks). The page's
/// rows are read by id afterwards ([`rows_statement`]).
pub fn search_statement(
    words: &Words,
    plan: &Plan,
    scope: &Scope,
    after: Option<&RankCursor>,
    limit: usize,
) -> (String, Vec<Value>) {
    filtered_statement(
        words,
        &[],
        plan,
        &CommentPlan::default(),
        scope,
        &SearchFilter::default(),
        after,
        limit,
    )
}

/// [`search_statement`] under the list's filters too, reading the comments
/// as `comments` says, checking the words by regular expression in the
/// order of `checks` ([`check_order`]).
#[allow(clippy::too_many_arguments)]
pub fn filtered_statement(
    words: &Words,
    checks: &[usize],
    plan: &Plan,
    comments: &CommentPlan,
    scope: &Scope,
    filter: &SearchFilter,
    after: Option<&RankCursor>,
    limit: usize,
) -> (String, Vec<Value>) {
    let checks = check_order(checks, words.0.len());
    let mut sql = Sql::new();
    let mut params: Vec<Value> = Vec::new();
    sql.push("SELECT id, MAX(s) AS score, MIN(c) AS comments_only FROM (");
    match plan {
        Plan::Fulltext { common } => {
            let common = *common;
            let query = words.boolean_without(common);
            let common: Vec<&str> = checks
                .iter()
                .filter(|&&i| common & (1 << i) != 0)
                .map(|&i| words.0[i].as_str())
                .collect();
            sql.push(
                "SELECT id, MATCH (title, description) AGAINST (? IN BOOLEAN MODE) AS s, 0 AS c \
                 FROM tasks WHERE MATCH (title, description) AGAINST (? IN BOOLEAN MODE)",
            );
            params.extend([query.clone().into(), query.into()]);
            push_scope(&mut sql, &mut params, scope);
            push_filter(&mut sql, &mut params, filter);
            for word in &common {
                push_holds(&mut sql, &mut params, word);
            }
        }
        Plan::Newest { from, .. } => {
            sql.push("SELECT id, CAST(");
            for (i, word) in words.0.iter().enumerate() {
                sql.push(if i == 0 { "" } else { " + " });
                sql.push(
                    "(title REGEXP ?) * ? + (CHAR_LENGTH(description) \
                     - CHAR_LENGTH(REGEXP_REPLACE(description, ?, ''))) DIV ?",
                );
                params.extend([
                    pattern(word).into(),
                    TITLE_WEIGHT.into(),
                    pattern(word).into(),
                    (word.chars().count() as u64).into(),
                ]);
            }
            sql.push(" AS DOUBLE) AS s, 0 AS c FROM tasks WHERE id >= ?");
            params.push(from.to_string().into());
            push_scope(&mut sql, &mut params, scope);
            push_filter(&mut sql, &mut params, filter);
            for &i in &checks {
                push_holds(&mut sql, &mut params, &words.0[i]);
            }
        }
    }
    push_comments_branch(&mut sql, &mut params, words, &checks, plan, comments);
    push_scope(&mut sql, &mut params, scope);
    push_filter(&mut sql, &mut params, filter);
    sql.push(") matches GROUP BY id");
    if let Some(cursor) = after {
        sql.push(match plan {
            Plan::Fulltext { .. } => " HAVING score < ? OR (score = ? AND id > ?)",
            Plan::Newest { .. } => " HAVING score < ? OR (score = ? AND id < ?)",
        });
        params.extend([
            cursor.score.into(),
            cursor.score.into(),
            cursor.id.to_string().into(),
        ]);
    }
    sql.push(match plan {
        Plan::Fulltext { .. } => " ORDER BY score DESC, id LIMIT ?",
        Plan::Newest { .. } => " ORDER BY score DESC, id DESC LIMIT ?",
    });
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

/// The sizes [`choose_plan`] works with ([`Sizes::DEFAULT`]; tests use
/// small ones).
#[derive(Clone, Copy, Debug)]
pub struct Sizes {
    pub window: usize,
    pub probe: usize,
    pub common_matches: u64,
    pub newest_matches: usize,
}

impl Sizes {
    pub const DEFAULT: Sizes = Sizes {
        window: WINDOW,
        probe: PROBE,
        common_matches: COMMON_MATCHES,
        newest_matches: NEWEST_MATCHES,
    };
}

/// The tables a search reads the text of, each measured on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Table {
    /// The cards: `title` and `description`.
    Tasks,
    /// The cards' comments: `body`.
    Comments,
}

impl Table {
    fn name(self) -> &'static str {
        match self {
            Table::Tasks => "tasks",
            Table::Comments => "comments",
        }
    }

    /// The columns of its text.
    fn texts(self) -> &'static [&'static str] {
        match self {
            Table::Tasks => &["title", "description"],
            Table::Comments => &["body"],
        }
    }
}

/// The id of the `n`-th newest row of `table` (1: the newest), if there
/// are `n` (ids are UUIDv7: the newest is the greatest).
async fn nth_newest(
    tx: &mut impl Queryable,
    table: Table,
    n: usize,
) -> Result<Option<String>, DbError> {
    let sql = format!(
        "SELECT id FROM {} ORDER BY id DESC LIMIT 1 OFFSET ?",
        table.name()
    );
    Ok(tx.exec_first(sql, (n as u64 - 1,)).await?)
}

/// Points of the table's id range the spread sample starts at.
const SPREAD_POINTS: usize = 20;

/// Runs of tasks by id: where each starts and ends (`None`: the table's end).
type Runs = Vec<(String, Option<String>)>;

/// Where the runs of a sample spread over the whole of `table` start and
/// end (`None`: the table's end): [`SPREAD_POINTS`] evenly spaced points
/// of the id range (ids are UUIDv7: points in time), half of `probe` rows
/// in all. Empty for an empty table. Reads index ranges by primary key.
async fn spread_runs(tx: &mut impl Queryable, table: Table, probe: usize) -> Result<Runs, DbError> {
    let ends: Option<(Option<String>, Option<String>)> = tx
        .exec_first(format!("SELECT MIN(id), MAX(id) FROM {}", table.name()), ())
        .await?;
    let Some((Some(lo), Some(hi))) = ends else {
        return Ok(Vec::new());
    };
    let (Ok(lo), Ok(hi)) = (uuid::Uuid::parse_str(&lo), uuid::Uuid::parse_str(&hi)) else {
        return Ok(Vec::new());
    };
    let (lo, hi) = (lo.as_u128(), hi.as_u128());
    let per_point = (probe / 2 / SPREAD_POINTS).max(1);
    let step = (hi - lo) / SPREAD_POINTS as u128;
    let points: Vec<String> = (0..SPREAD_POINTS as u128)
        .map(|i| uuid::Uuid::from_u128(lo + step * i).to_string())
        .collect();
    // The id ending each point's run.
    let mut sql = Sql::new();
    let mut params: Vec<Value> = Vec::new();
    for (i, point) in points.iter().enumerate() {
        sql.push(if i == 0 { "" } else { " UNION ALL " });
        sql.push("SELECT (SELECT id FROM ");
        sql.push(table.name());
        sql.push(" WHERE id >= ? ORDER BY id LIMIT 1 OFFSET ?)");
        params.extend([point.clone().into(), (per_point as u64 - 1).into()]);
    }
    let ends: Vec<Option<String>> = tx.exec(sql.into_string(), params).await?;
    Ok(points.into_iter().zip(ends).collect())
}

/// How many rows of `table` in `runs` (the spread sample, [`spread_runs`],
/// or the newest rows) have each word, and how many rows they hold.
/// Nothing with the text is sorted or put in a temporary table.
async fn hits(
    tx: &mut impl Queryable,
    table: Table,
    words: &Words,
    runs: &Runs,
) -> Result<(Vec<u64>, u64), DbError> {
    if runs.is_empty() {
        return Ok((vec![0; words.0.len()], 0));
    }
    let mut sql = Sql::new();
    let mut params: Vec<Value> = Vec::new();
    sql.push("SELECT COUNT(*)");
    for word in &words.0 {
        sql.push(", CAST(SUM(");
        for (j, text) in table.texts().iter().enumerate() {
            sql.push(if j == 0 { "" } else { " OR " });
            sql.push(text);
            sql.push(" REGEXP ?");
            params.push(pattern(word).into());
        }
        sql.push(") AS UNSIGNED)");
    }
    sql.push(" FROM ");
    sql.push(table.name());
    sql.push(" WHERE ");
    for (i, (point, end)) in runs.iter().enumerate() {
        sql.push(if i == 0 { "" } else { " OR " });
        match end {
            Some(end) => {
                sql.push("id BETWEEN ? AND ?");
                params.extend([point.clone().into(), end.clone().into()]);
            }
            // To the end: the newest rows, or a last run shorter than the others.
            None => {
                sql.push("id >= ?");
                params.push(point.clone().into());
            }
        }
    }
    let row: mysql_async::Row = tx
        .exec_first(sql.into_string(), params)
        .await?
        .ok_or_else(|| DbError::Corrupt("an aggregate without a row".into()))?;
    let count = |i: usize| row.get::<Option<u64>, _>(i).flatten().unwrap_or(0);
    Ok(((1..=words.0.len()).map(count).collect(), count(0)))
}

/// What a search learnt of a word: whether it is common (in about
/// [`Sizes::common_matches`] tasks or more), and its share of the
/// [`Sizes::probe`] newest tasks.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Measure {
    common: bool,
    share: f64,
    /// About how many tasks have the word.
    matches: u64,
}

/// The plan of a new search of `words`, measured afresh (see [`search`]
/// and [`Planner`], which remembers what it measured).
pub async fn choose_plan(
    tx: &mut impl Queryable,
    words: &Words,
    sizes: Sizes,
) -> Result<Plan, DbError> {
    Planner::new(sizes).plan(tx, words, 1.0).await
}

/// How long a word's measure stands: a word in about [`COMMON_MATCHES`]
/// tasks does not become rare, or a rare one common, in minutes.
pub const KNOWN_FOR: Duration = Duration::from_secs(300);
/// The most words a [`Planner`] remembers (about 100 bytes each).
pub const KNOWN_WORDS: usize = 10_000;
/// How long where a window of the newest tasks starts stands: a window
/// may hold the tasks made in this time too.
pub const START_FOR: Duration = Duration::from_secs(5);
/// The most window starts a [`Planner`] remembers.
const KNOWN_STARTS: usize = 64;

/// Chooses the plan of new searches, remembering for [`KNOWN_FOR`] what it
/// measured of each word, and for [`START_FOR`] where each window of the
/// newest rows it read starts. Measuring a word reads a few thousand
/// rows' text by regular expression (about 10 ms on a million tasks); the
/// words people search repeat, so most searches measure nothing, and a
/// search of rare words then asks MySQL only for its page. The cards and
/// the comments are measured apart, the same way. One per node, in the
/// API's state; bounded by [`KNOWN_WORDS`] words and [`KNOWN_STARTS`]
/// starts a table.
pub struct Planner {
    sizes: Sizes,
    known: Mutex<Known>,
}

#[derive(Default)]
struct Known {
    tasks: Seen,
    comments: Seen,
}

impl Known {
    fn of(&mut self, table: Table) -> &mut Seen {
        match table {
            Table::Tasks => &mut self.tasks,
            Table::Comments => &mut self.comments,
        }
    }
}

/// What a [`Planner`] read of one table, and when.
#[derive(Default)]
struct Seen {
    words: HashMap<String, (Measure, Instant)>,
    /// `n` → the id of the `n`-th newest row (`None`: fewer rows).
    starts: HashMap<usize, (Option<String>, Instant)>,
    /// InnoDB's estimate of the rows.
    rows: Option<(u64, Instant)>,
    /// Where the spread sample lies ([`spread_runs`]).
    runs: Option<(Runs, Instant)>,
}

impl Planner {
    pub fn new(sizes: Sizes) -> Planner {
        Planner {
            sizes,
            known: Mutex::new(Known::default()),
        }
    }

    /// The plan of a new search of `words` (see [`search`]) among the
    /// cards of boards holding `visible` (0 to 1) of all cards: a
    /// [`Plan::Newest`] window holds about [`Sizes::newest_matches`] of
    /// their matches.
    pub async fn plan(
        &self,
        tx: &mut impl Queryable,
        words: &Words,
        visible: f64,
    ) -> Result<Plan, DbError> {
        let Some(measures) = self.measures(tx, Table::Tasks, words).await? else {
            return Ok(Plan::Fulltext { common: 0 });
        };
        let common = common_mask(&measures);
        if !measures.iter().all(|m| m.common) {
            return Ok(Plan::Fulltext { common });
        }
        let Some((from, window)) = self.window(tx, Table::Tasks, &measures, visible).await? else {
            // The table shrank since the words were measured: few tasks.
            return Ok(Plan::Fulltext { common: 0 });
        };
        let from = from
            .parse()
            .map_err(|_| DbError::Corrupt(format!("tasks.id `{from}`")))?;
        Ok(Plan::Newest { from, window })
    }

    /// How a new search of `words` reads the comments (see [`search`]):
    /// through their FULLTEXT index, the words common among them (about
    /// [`Sizes::common_matches`] comments or more, measured as the cards'
    /// words are) checked on its rows; or, every word common, only the
    /// newest comments, as many as hold about [`Sizes::newest_matches`]
    /// matches on boards holding `visible` of the cards (at most
    /// [`Sizes::window`]). Fewer than [`Sizes::window`] comments: the
    /// index, whatever the words.
    pub async fn comment_plan(
        &self,
        tx: &mut impl Queryable,
        words: &Words,
        visible: f64,
    ) -> Result<CommentPlan, DbError> {
        let Some(measures) = self.measures(tx, Table::Comments, words).await? else {
            return Ok(CommentPlan::default());
        };
        if !measures.iter().all(|m| m.common) {
            return Ok(CommentPlan::Index {
                common: common_mask(&measures),
            });
        }
        match self.window(tx, Table::Comments, &measures, visible).await? {
            Some((from, window)) => Ok(CommentPlan::Newest { from, window }),
            None => Ok(CommentPlan::default()),
        }
    }

    /// Which of `words` are common (bit i: the i-th word; none when there
    /// are few tasks): what a list filtered by text needs, which reads in
    /// board order and has no window.
    pub async fn common(&self, tx: &mut impl Queryable, words: &Words) -> Result<u16, DbError> {
        Ok(self
            .measures(tx, Table::Tasks, words)
            .await?
            .map_or(0, |measures| common_mask(&measures)))
    }

    /// The indexes of `words` by their share of the newest tasks, as
    /// remembered, the rarest first (a word not remembered counts as
    /// rare; equals keep the query's order): the order to check them in
    /// ([`check_order`]).
    pub fn rarest_first(&self, words: &Words) -> Vec<usize> {
        let (measures, _) = self.recall(Table::Tasks, words, Instant::now());
        let share = |i: usize| measures[i].map_or(0.0, |m| m.share);
        let mut order: Vec<usize> = (0..words.0.len()).collect();
        order.sort_by(|&a, &b| share(a).total_cmp(&share(b)));
        order
    }

    /// The word of `words` in the fewest tasks, as remembered: its index
    /// and about how many tasks have it (`None`: none remembered).
    pub fn rarest(&self, words: &Words) -> Option<(usize, u64)> {
        let (measures, _) = self.recall(Table::Tasks, words, Instant::now());
        measures
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.map(|m| (i, m.matches)))
            .min_by_key(|&(_, matches)| matches)
    }

    /// Where the window of the newest rows of `table` starts that holds
    /// about [`Sizes::newest_matches`] rows with every word of these
    /// `measures` on boards holding `visible` of the cards, and its size
    /// (at most [`Sizes::window`]); `None` when the table has fewer rows.
    async fn window(
        &self,
        tx: &mut impl Queryable,
        table: Table,
        measures: &[Measure],
        visible: f64,
    ) -> Result<Option<(String, usize)>, DbError> {
        let share: f64 = measures.iter().map(|m| m.share).product::<f64>() * visible;
        let window = window_for(share, self.sizes);
        Ok(self
            .nth_newest(tx, table, window)
            .await?
            .map(|from| (from, window)))
    }

    /// The measure of each of `words` in `table`, remembered or measured
    /// now; `None` when it has fewer than [`Sizes::window`] rows.
    async fn measures(
        &self,
        tx: &mut impl Queryable,
        table: Table,
        words: &Words,
    ) -> Result<Option<Vec<Measure>>, DbError> {
        let (mut measures, unknown) = self.recall(table, words, Instant::now());
        if !unknown.is_empty() {
            let asked = Words(unknown.iter().map(|&i| words.0[i].clone()).collect());
            let Some(measured) = self.measure(tx, table, &asked).await? else {
                // Few rows: nothing worth remembering.
                return Ok(None);
            };
            self.remember(table, &asked, &measured, Instant::now());
            for (&i, measure) in unknown.iter().zip(measured) {
                measures[i] = Some(measure);
            }
        }
        Ok(Some(measures.into_iter().flatten().collect()))
    }

    /// Each of `words` measured on `table`: its share of the
    /// [`Sizes::probe`] newest rows and of a sample spread over the table
    /// (the greater says how many rows have it: a burst of new cards with
    /// other words, an import or a load test, made every word look rare
    /// among the newest, and the FULLTEXT index then ranked a word in a
    /// third of a million tasks, 1.7 s); `None` when there are fewer than
    /// [`Sizes::window`] rows (the index reads little whatever the
    /// words). Where the newest rows start, the table's estimated rows and
    /// where the spread sample lies are read at most [`START_FOR`] (the
    /// sample: [`KNOWN_FOR`]) ago: measuring a word asks MySQL for the
    /// words alone.
    async fn measure(
        &self,
        tx: &mut impl Queryable,
        table: Table,
        words: &Words,
    ) -> Result<Option<Vec<Measure>>, DbError> {
        let sizes = self.sizes;
        if self.nth_newest(tx, table, sizes.window).await?.is_none() {
            return Ok(None);
        }
        let probe = self
            .nth_newest(tx, table, sizes.probe)
            .await?
            .ok_or_else(|| DbError::Corrupt(format!("fewer {} than a moment ago", table.name())))?;
        // The newest rows: one run, from the probe's start to the end.
        let (newest, _) = hits(tx, table, words, &vec![(probe, None)]).await?;
        let rows = self.rows(tx, table).await?.max(sizes.window as u64);
        let runs = self.spread_runs(tx, table).await?;
        let (spread, sampled) = hits(tx, table, words, &runs).await?;
        let measures = newest
            .iter()
            .zip(spread)
            .map(|(&hits, spread)| {
                let matches =
                    (hits * rows / sizes.probe as u64).max(spread * rows / sampled.max(1));
                Measure {
                    common: matches >= sizes.common_matches,
                    share: hits as f64 / sizes.probe as f64,
                    matches,
                }
            })
            .collect();
        Ok(Some(measures))
    }

    /// InnoDB's estimate of the rows of `table` (its statistics, no
    /// count), as read at most [`START_FOR`] ago.
    async fn rows(&self, tx: &mut impl Queryable, table: Table) -> Result<u64, DbError> {
        let now = Instant::now();
        if let Some(rows) = fresh(self.lock().of(table).rows.as_ref(), now, START_FOR) {
            return Ok(rows);
        }
        let rows: u64 = tx
            .exec_first(
                "SELECT TABLE_ROWS FROM information_schema.TABLES \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?",
                (table.name(),),
            )
            .await?
            .flatten()
            .unwrap_or(0);
        self.lock().of(table).rows = Some((rows, now));
        Ok(rows)
    }

    /// [`spread_runs`] of `table`, as read at most [`KNOWN_FOR`] ago.
    async fn spread_runs(&self, tx: &mut impl Queryable, table: Table) -> Result<Runs, DbError> {
        let now = Instant::now();
        if let Some(runs) = fresh(self.lock().of(table).runs.as_ref(), now, KNOWN_FOR) {
            return Ok(runs);
        }
        let runs = spread_runs(tx, table, self.sizes.probe).await?;
        self.lock().of(table).runs = Some((runs.clone(), now));
        Ok(runs)
    }

    /// The id of the `n`-th newest row of `table` (`None`: fewer rows),
    /// as read at most [`START_FOR`] ago.
    async fn nth_newest(
        &self,
        tx: &mut impl Queryable,
        table: Table,
        n: usize,
    ) -> Result<Option<String>, DbError> {
        let now = Instant::now();
        if let Some(start) = fresh(self.lock().of(table).starts.get(&n), now, START_FOR) {
            return Ok(start);
        }
        let start = nth_newest(tx, table, n).await?;
        let mut known = self.lock();
        let starts = &mut known.of(table).starts;
        if starts.len() >= KNOWN_STARTS {
            starts.clear();
        }
        starts.insert(n, (start.clone(), now));
        Ok(start)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Known> {
        self.known.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The measure of each word in `table` known at `now` (`None`: not
    /// known), and the indexes of the words not known.
    fn recall(
        &self,
        table: Table,
        words: &Words,
        now: Instant,
    ) -> (Vec<Option<Measure>>, Vec<usize>) {
        let mut known = self.lock();
        let seen = known.of(table);
        let measures: Vec<Option<Measure>> = words
            .0
            .iter()
            .map(|word| fresh(seen.words.get(word), now, KNOWN_FOR))
            .collect();
        let unknown = (0..measures.len())
            .filter(|&i| measures[i].is_none())
            .collect();
        (measures, unknown)
    }

    fn remember(&self, table: Table, words: &Words, measures: &[Measure], now: Instant) {
        let mut known = self.lock();
        let words_known = &mut known.of(table).words;
        if words_known.len() + words.0.len() > KNOWN_WORDS {
            words_known.retain(|_, (_, at)| now.duration_since(*at) < KNOWN_FOR);
            if words_known.len() + words.0.len() > KNOWN_WORDS {
                words_known.clear();
            }
        }
        for (word, measure) in words.0.iter().zip(measures) {
            words_known.insert(word.clone(), (*measure, now));
        }
    }

    /// How many words of `table` are remembered.
    #[cfg(test)]
    fn known_words(&self, table: Table) -> usize {
        self.lock().of(table).words.len()
    }
}

/// A remembered value, if it was read less than `age` before `now`.
fn fresh<T: Clone>(read: Option<&(T, Instant)>, now: Instant, age: Duration) -> Option<T> {
    read.filter(|(_, at)| now.duration_since(*at) < age)
        .map(|(value, _)| value.clone())
}

/// Bit i set when the i-th word is common.
fn common_mask(measures: &[Measure]) -> u16 {
    measures
        .iter()
        .enumerate()
        .filter(|(_, m)| m.common)
        .fold(0, |mask, (i, _)| mask | 1 << i)
}

/// How many of the newest tasks hold about [`Sizes::newest_matches`]
/// matches of words with this share of the newest tasks (at most
/// [`Sizes::window`]).
fn window_for(share: f64, sizes: Sizes) -> usize {
    let wanted = sizes.newest_matches as f64 / share;
    if !wanted.is_finite() || wanted >= sizes.window as f64 {
        return sizes.window;
    }
    (wanted.ceil() as usize).max(1)
}

/// A ranked page of the tasks of `scope` matching `words`, read in one
/// consistent snapshot with the last seq it reflects.
///
/// A match has every word, each as a word or the start of one, in its
/// title or description, or in one of its comments (a comment counts
/// [`COMMENT_WEIGHT`] of its relevance). The comments are read by a
/// plan of their own ([`CommentPlan`], [`Planner::comment_plan`]), chosen
/// the same way from how common the words are among them. How the matches
/// are ranked depends on how common the words are, measured on the
/// [`PROBE`] newest tasks and a sample spread over the table when a search
/// first has the word (the [`Planner`] remembers it for [`KNOWN_FOR`];
/// later pages keep the first page's plan, carried in the cursor):
///
/// - some word is in fewer than about [`COMMON_MATCHES`] tasks (or there
///   are at most [`WINDOW`] tasks): every matching task of `scope`, ranked by
///   InnoDB's relevance of the rare words (tf-idf: more occurrences of
///   rarer words rank higher; a common word would add little to it). The
///   FULLTEXT index reads only the rare words' matches, and the common
///   words are checked on those rows, so a search costs about the rare
///   words' matches, not the common ones' (InnoDB ranks every match of
///   every word it is given before any LIMIT: a word in a third of a
///   million tasks took over half a second on its own);
/// - every word is common: the matching tasks of `scope` among the newest
///   tasks of every board, as many as hold about [`NEWEST_MATCHES`] matches
///   on `scope`'s boards, which hold `visible` (0 to 1) of all cards (at
///   most [`WINDOW`]), ranked by how often the words occur
///   (each word in the title counts [`TITLE_WEIGHT`], each occurrence in
///   the description 1), the newest first among equals. Older matches are not answered: with words
///   this common there are hundreds of newer ones.
///
/// The scope is part of the query: every page is full while more visible
/// matches exist.
pub async fn search(
    pool: &Pool,
    planner: &Planner,
    visible: f64,
    words: &Words,
    scope: &Scope,
    filter: &SearchFilter,
    page: Page<'_>,
) -> Result<SearchPage, DbError> {
    let Page { after, limit } = page;
    let mut conn = pool.get_conn().await?;
    let mut snapshot = TxOpts::default();
    snapshot
        .with_consistent_snapshot(true)
        .with_readonly(Some(true));
    let mut tx = conn.start_transaction(snapshot).await?;
    let (plan, comments) = match after {
        Some(cursor) => (cursor.plan.clone(), cursor.comments.clone()),
        None => (
            planner.plan(&mut tx, words, visible).await?,
            planner.comment_plan(&mut tx, words, visible).await?,
        ),
    };
    let mut ranked: Vec<(String, f64, u8)> = Vec::new();
    if scope != &Scope::Boards(Vec::new()) {
        let checks = planner.rarest_first(words);
        let (sql, params) = filtered_statement(
            words,
            &checks,
            &plan,
            &comments,
            scope,
            filter,
            after,
            limit + 1,
        );
        ranked = tx.exec(sql, params).await?;
    }
    let mut rows: Vec<mysql_async::Row> = Vec::new();
    if !ranked.is_empty() {
        let ids: Vec<String> = ranked.iter().map(|(id, ..)| id.clone()).collect();
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
    for (id, score, in_comments) in ranked {
        let id: TaskId = id
            .parse()
            .map_err(|_| DbError::Corrupt(format!("tasks.id `{id}`")))?;
        // Both reads are in one snapshot: every ranked id has its row.
        let task = tasks
            .remove(&id)
            .ok_or_else(|| DbError::Corrupt(format!("ranked task {id} has no row")))?;
        hits.push(Hit {
            task,
            score,
            in_comments: in_comments != 0,
        });
    }
    let next = if hits.len() > limit {
        hits.truncate(limit);
        hits.last().map(|hit| RankCursor {
            score: hit.score,
            id: hit.task.id,
            plan: plan.clone(),
            comments: comments.clone(),
        })
    } else {
        None
    };
    Ok(SearchPage {
        hits,
        next,
        last_seq,
        plan,
        comments,
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
    fn a_plan_fits_only_a_query_with_as_many_words_and_one_rare() {
        let two = Words::parse("deploy pipeline").unwrap();
        assert!(Plan::Fulltext { common: 0 }.fits(&two));
        assert!(Plan::Fulltext { common: 2 }.fits(&two));
        assert!(
            !Plan::Fulltext { common: 3 }.fits(&two),
            "no word for the index"
        );
        assert!(!Plan::Fulltext { common: 4 }.fits(&two), "no third word");
    }

    #[test]
    fn patterns_match_a_word_or_its_start() {
        assert_eq!(pattern("deploy"), "(?i)(?<![[:alnum:]_])deploy");
    }

    #[test]
    fn rank_cursors_round_trip_exactly() {
        for plan in [
            Plan::Fulltext { common: 0 },
            Plan::Fulltext { common: 5 },
            Plan::Newest {
                from: TaskId::generate(),
                window: 1316,
            },
        ] {
            for comments in [
                CommentPlan::Index { common: 0 },
                CommentPlan::Index { common: 3 },
                CommentPlan::Newest {
                    from: uuid::Uuid::now_v7().to_string(),
                    window: 742,
                },
            ] {
                let cursor = RankCursor {
                    score: 0.147_650_599_479_675_3,
                    id: TaskId::generate(),
                    plan: plan.clone(),
                    comments,
                };
                assert_eq!(cursor.to_string().parse::<RankCursor>(), Ok(cursor));
            }
        }
        assert_eq!(
            "r~0.5~0192f0c4-0000-7000-8000-000000000000"
                .parse::<RankCursor>()
                .unwrap()
                .comments,
            CommentPlan::Index { common: 0 },
            "a cursor from before comments had plans"
        );
        let id = "0192f0c4-0000-7000-8000-000000000000";
        assert_eq!(
            format!("r~0.5~{id}").parse::<RankCursor>().unwrap().plan,
            Plan::Fulltext { common: 0 },
            "a cursor from before plans"
        );
        assert_eq!(
            format!("w~2~{id}~{id}").parse::<RankCursor>().unwrap().plan,
            Plan::Newest {
                from: id.parse().unwrap(),
                window: WINDOW
            },
            "a cursor from before fitted windows"
        );
        for bad in [
            "",
            "r~",
            "r~x~y",
            "r~inf~0192f0c4-0000-7000-8000-000000000000",
            "todo~1~x",
            &format!("r~1~{id}~5"),
            &format!("r~1~{id}~c99999"),
            &format!("w~1~{id}"),
            &format!("w~1~{id}~x"),
            &format!("r~1~{id}!"),
            &format!("r~1~{id}!kx"),
            &format!("r~1~{id}!n{id}"),
            &format!("r~1~{id}!nnot-a-uuid.5"),
            &format!("r~1~{id}!n{id}.x"),
            &format!("w~1~{id}~{id}~x"),
            &format!("w~1~{id}~{id}~-5"),
            &format!("x~1~{id}~{id}"),
        ] {
            assert!(bad.parse::<RankCursor>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_planner_remembers_each_word_for_a_while_and_a_bounded_number_of_words() {
        let planner = Planner::new(Sizes::DEFAULT);
        let start = Instant::now();
        let common = Measure {
            common: true,
            share: 0.25,
            matches: 250_000,
        };
        let rare = Measure {
            common: false,
            share: 0.0,
            matches: 10,
        };
        let words = Words::parse("invoice kelomar export").unwrap();
        assert_eq!(
            planner.recall(Table::Tasks, &words, start),
            (vec![None; 3], vec![0, 1, 2])
        );
        planner.remember(
            Table::Tasks,
            &Words::parse("invoice kelomar").unwrap(),
            &[common, rare],
            start,
        );
        assert_eq!(
            planner.recall(Table::Tasks, &words, start),
            (vec![Some(common), Some(rare), None], vec![2])
        );
        // The comments' measures are their own.
        assert_eq!(
            planner.recall(Table::Comments, &words, start),
            (vec![None; 3], vec![0, 1, 2])
        );
        planner.remember(
            Table::Comments,
            &Words::parse("invoice").unwrap(),
            &[rare],
            start,
        );
        assert_eq!(
            planner.recall(Table::Comments, &words, start).0[0],
            Some(rare)
        );
        assert_eq!(
            planner.recall(Table::Tasks, &words, start).0[0],
            Some(common)
        );
        planner.remember(
            Table::Tasks,
            &Words::parse("export").unwrap(),
            &[common],
            start,
        );
        let later = start + KNOWN_FOR - Duration::from_secs(1);
        let reordered = Words::parse("kelomar export invoice").unwrap();
        assert_eq!(
            planner.recall(Table::Tasks, &reordered, later),
            (vec![Some(rare), Some(common), Some(common)], vec![])
        );
        // Stale: measured again.
        assert_eq!(
            planner.recall(Table::Tasks, &words, start + KNOWN_FOR),
            (vec![None; 3], vec![0, 1, 2])
        );

        // Bounded: when full, the stale words go; if none is stale, every word.
        let planner = Planner::new(Sizes::DEFAULT);
        for i in 0..KNOWN_WORDS {
            planner.remember(Table::Tasks, &Words(vec![format!("w{i}")]), &[rare], start);
        }
        assert_eq!(planner.known_words(Table::Tasks), KNOWN_WORDS);
        planner.remember(
            Table::Tasks,
            &Words(vec!["fresh".into()]),
            &[common],
            start + KNOWN_FOR,
        );
        assert_eq!(
            planner.known_words(Table::Tasks),
            1,
            "every stale word dropped"
        );
        for i in 0..KNOWN_WORDS + 5 {
            planner.remember(
                Table::Tasks,
                &Words(vec![format!("v{i}")]),
                &[rare],
                start + KNOWN_FOR,
            );
        }
        assert!(planner.known_words(Table::Tasks) <= KNOWN_WORDS);
    }

    #[test]
    fn the_rarest_remembered_word_is_checked_first_and_any_order_is_a_permutation() {
        let planner = Planner::new(Sizes::DEFAULT);
        let words = Words::parse("invoice kelomar export").unwrap();
        assert_eq!(planner.rarest_first(&words), [0, 1, 2], "nothing known");
        let now = Instant::now();
        let measure = |share: f64| Measure {
            common: true,
            share,
            matches: (share * 1e6) as u64,
        };
        assert_eq!(planner.rarest(&words), None);
        planner.remember(
            Table::Tasks,
            &words,
            &[measure(0.15), measure(0.002), measure(0.04)],
            now,
        );
        assert_eq!(planner.rarest_first(&words), [1, 2, 0]);
        assert_eq!(planner.rarest(&words), Some((1, 2_000)));
        assert_eq!(check_order(&[1, 2, 0], 3), [1, 2, 0]);
        for not_all in [&[][..], &[1, 2], &[1, 1, 0], &[0, 1, 3], &[0, 1, 2, 3]] {
            assert_eq!(check_order(not_all, 3), [0, 1, 2], "{not_all:?}");
        }
    }

    #[test]
    fn the_newest_window_holds_about_the_matches_wanted_and_never_more_than_the_window() {
        let sizes = Sizes::DEFAULT;
        assert_eq!(window_for(1.0 / 3.0, sizes), 1500);
        assert_eq!(window_for(0.1, sizes), 5000);
        assert_eq!(window_for(0.025, sizes), WINDOW);
        assert_eq!(window_for(0.001, sizes), WINDOW);
        assert_eq!(window_for(0.0, sizes), WINDOW, "a burst without the word");
        assert_eq!(window_for(1.0, sizes), NEWEST_MATCHES);
        // A user on boards with an eighth of the cards: eight times the tasks.
        assert_eq!(window_for(0.5 * 0.125, sizes), 8_000);
    }
}
