//! Boards, their columns and their members: where a task is placed.
//!
//! The catalog is small (boards and columns, not cards), so every node
//! holds all of it in memory, and the board ([`super::Board`]) decides
//! catalog commands with the same determinism as task commands: the same
//! catalog and command give the same result and the same event on every
//! node. Events carry the whole record after the change, so the catalog is
//! a fold of the event table like the tasks are ([`Catalog::fold`]).
//!
//! The **default board** always exists. Its three first columns are fixed:
//! their ids are constants and their keys are the `status` names `todo`,
//! `in_progress` and `done`. A task on one of them stores no board and no
//! column (both are implied by its `status`), so a task written before
//! boards existed, and every event about it, is unchanged byte for byte.
//! Any other placement is stored: `board_id`, `column_id`.
//!
//! A task's `status` is the category of its column (every column has one:
//! todo, in progress or done), so the status filter and the old clients
//! that only know three columns keep working on every board.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::Status;
use crate::accounts::Role;

/// Gap left between a column and one added after it.
const COLUMN_STEP: f64 = 1024.0;
/// Gap left between a column's last card and a card added at its end.
const POSITION_STEP: f64 = 1024.0;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.hyphenated().fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    };
}

uuid_id!(
    /// A board's identity.
    BoardId
);
uuid_id!(
    /// A column's identity, unique across boards.
    ColumnId
);

/// The board every task without a board is on.
pub const DEFAULT_BOARD: BoardId = BoardId(Uuid::from_u128(1));

impl BoardId {
    pub fn is_default(&self) -> bool {
        *self == DEFAULT_BOARD
    }

    pub fn is_default_ref(id: &BoardId) -> bool {
        id.is_default()
    }
}

impl Default for BoardId {
    fn default() -> Self {
        DEFAULT_BOARD
    }
}

/// The default board's fixed column for `status`.
pub fn fixed_column(status: Status) -> ColumnId {
    ColumnId(Uuid::from_u128(0x10 + status.rank() as u128))
}

/// Whether `id` is one of the default board's fixed columns, and which.
pub fn fixed_status(id: ColumnId) -> Option<Status> {
    Status::ALL.into_iter().find(|s| fixed_column(*s) == id)
}

/// What a user may do on a board.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoardRole {
    Viewer,
    Member,
    Admin,
}

impl BoardRole {
    pub const ALL: [BoardRole; 3] = [BoardRole::Viewer, BoardRole::Member, BoardRole::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            BoardRole::Viewer => "viewer",
            BoardRole::Member => "member",
            BoardRole::Admin => "admin",
        }
    }

    pub fn can_edit(self) -> bool {
        self >= BoardRole::Member
    }
}

impl FromStr for BoardRole {
    type Err = super::UnknownName;
    fn from_str(s: &str) -> Result<Self, super::UnknownName> {
        BoardRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| super::UnknownName(s.to_string()))
    }
}

/// A board, without its columns and members.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardRecord {
    pub id: BoardId,
    /// 1–100 characters, trimmed.
    pub name: String,
    #[serde(default)]
    pub archived: bool,
}

/// A column of a board.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Column {
    pub id: ColumnId,
    pub board_id: BoardId,
    /// 1–60 characters, trimmed.
    pub name: String,
    /// Unique on its board; the `status` name for the three a board starts
    /// with, so `status=todo` keeps naming a column on every board.
    pub key: String,
    /// The status of the cards in it.
    pub category: Status,
    /// Order on the board, ascending; ties broken by id.
    pub position: f64,
    /// Cards the column should hold at most; more are accepted and
    /// reported, as Kanban tools do.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wip_limit: Option<u32>,
    /// `#rrggbb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    /// Cards unchanged this many days are archived by the leader's sweep
    /// (`crate::archiver`), each through the log like a user's archive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_after_days: Option<u32>,
    /// 1 when made, one more with every change: what `If-Match` names, so
    /// two editors of one column cannot overwrite each other unseen.
    /// Events written before columns had versions carry none (0 here);
    /// [`Catalog::fold`] gives such a column its version by the same rule.
    #[serde(default)]
    pub version: u64,
}

/// A user's place on a board: `role` `None` is a removal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BoardMember {
    pub board_id: BoardId,
    pub user_id: String,
    pub role: Option<BoardRole>,
}

/// A new board, with the ids of its three first columns.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewBoard {
    pub id: BoardId,
    pub name: String,
    pub columns: [ColumnId; 3],
}

/// A new column; the catalog picks what is left out.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewColumn {
    pub id: ColumnId,
    pub board_id: BoardId,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wip_limit: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub color: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Status>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub archive_after_days: Option<u32>,
}

/// What a column change changes; `None` keeps a field, `Some(None)` clears
/// a nullable one.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ColumnPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<f64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::command::present"
    )]
    pub wip_limit: Option<Option<u32>>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::command::present"
    )]
    pub color: Option<Option<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Status>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "super::command::present"
    )]
    pub archive_after_days: Option<Option<u32>>,
}

/// Cards in a column: on the board, and archived.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub live: u64,
    pub archived: u64,
}

impl Counts {
    pub fn total(&self) -> u64 {
        self.live + self.archived
    }
}

/// Where a task is: its board, its column, its status (the column's
/// category), and whether it is archived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Place {
    pub board_id: BoardId,
    pub column_id: ColumnId,
    pub status: Status,
}

impl Place {
    /// The column as a task stores it: nothing for a fixed column.
    pub fn stored_column(&self) -> Option<ColumnId> {
        fixed_status(self.column_id)
            .is_none()
            .then_some(self.column_id)
    }
}

/// Why a catalog command or a placement was refused.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum CatalogRejection {
    #[error("no board {id}")]
    BoardNotFound { id: BoardId },
    #[error("no column {id}")]
    ColumnNotFound { id: ColumnId },
    #[error("board {id} is archived")]
    BoardArchived { id: BoardId },
    #[error("the id {id} is taken")]
    IdTaken { id: Uuid },
    #[error("column {id} holds {cards} cards; move them first (move_to)")]
    ColumnNotEmpty { id: ColumnId, cards: u64 },
    #[error("column {id} is the last of its board")]
    LastColumn { id: ColumnId },
    #[error("column {id} is one of the default board's three status columns")]
    FixedColumn { id: ColumnId },
    #[error("column {column} is not on board {board}")]
    ColumnElsewhere { column: ColumnId, board: BoardId },
    #[error("the default board cannot be archived")]
    DefaultBoard,
    /// `If-Match` named another version of the column than its current one.
    #[error("column is at version {}, not {expected}", current.version)]
    ColumnVersionMismatch { expected: u64, current: Box<Column> },
    /// The acting user is not on the board (said as if it did not exist).
    #[error("no board {id}")]
    NotOnBoard { id: BoardId },
    /// The acting user only views the board.
    #[error("a viewer of board {id} cannot change it")]
    ReadOnly { id: BoardId },
}

/// What a catalog command changed, for the event.
#[derive(Clone, Debug, PartialEq)]
pub enum Cataloged {
    Board(BoardRecord),
    Column(Column),
    ColumnDeleted(Column),
    Member(BoardMember),
}

/// The rows a run of commands changed, for the applier to write, and the
/// columns whose cards it counted differently.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CatalogDirty {
    pub boards: BTreeSet<BoardId>,
    pub columns: BTreeSet<ColumnId>,
    pub members: BTreeSet<(BoardId, String)>,
    pub counts: BTreeSet<ColumnId>,
}

impl CatalogDirty {
    pub fn is_empty(&self) -> bool {
        self.boards.is_empty()
            && self.columns.is_empty()
            && self.members.is_empty()
            && self.counts.is_empty()
    }
}

/// Every board, column and member, the cards per column, and the tail of
/// each column that is not fixed.
#[derive(Clone, Debug, PartialEq)]
pub struct Catalog {
    boards: BTreeMap<BoardId, BoardRecord>,
    members: BTreeMap<BoardId, BTreeMap<String, BoardRole>>,
    columns: BTreeMap<ColumnId, Column>,
    /// The highest position ever given to a card in each column that is
    /// not fixed (the fixed ones have `ColumnTails`). Only grows.
    tails: HashMap<ColumnId, f64>,
    counts: HashMap<ColumnId, Counts>,
    dirty: CatalogDirty,
}

impl Default for Catalog {
    /// The default board and its three fixed columns, nothing else.
    fn default() -> Catalog {
        let mut catalog = Catalog {
            boards: BTreeMap::new(),
            members: BTreeMap::new(),
            columns: BTreeMap::new(),
            tails: HashMap::new(),
            counts: HashMap::new(),
            dirty: CatalogDirty::default(),
        };
        catalog.boards.insert(
            DEFAULT_BOARD,
            BoardRecord {
                id: DEFAULT_BOARD,
                name: "Board".into(),
                archived: false,
            },
        );
        for (status, name) in Status::ALL.into_iter().zip(DEFAULT_COLUMN_NAMES) {
            let id = fixed_column(status);
            catalog.columns.insert(
                id,
                Column {
                    id,
                    board_id: DEFAULT_BOARD,
                    name: name.into(),
                    key: status.as_str().into(),
                    category: status,
                    position: (status.rank() as f64 + 1.0) * COLUMN_STEP,
                    wip_limit: None,
                    color: None,
                    archive_after_days: None,
                    version: 1,
                },
            );
        }
        catalog
    }
}

/// The names of a new board's three columns.
pub const DEFAULT_COLUMN_NAMES: [&str; 3] = ["To do", "In progress", "Done"];

impl Catalog {
    /// A catalog of these rows (as the applier loads them). The default
    /// board and its fixed columns are there whatever the rows say.
    pub fn from_rows(
        boards: Vec<BoardRecord>,
        columns: Vec<(Column, f64)>,
        members: Vec<(BoardId, String, BoardRole)>,
        counts: HashMap<ColumnId, Counts>,
    ) -> Catalog {
        let mut catalog = Catalog::default();
        for board in boards {
            catalog.boards.insert(board.id, board);
        }
        for (column, tail) in columns {
            if fixed_status(column.id).is_none() {
                catalog.tails.insert(column.id, tail);
            }
            catalog.columns.insert(column.id, column);
        }
        for (board, user, role) in members {
            catalog.members.entry(board).or_default().insert(user, role);
        }
        catalog.counts = counts;
        catalog
    }

    pub fn board(&self, id: &BoardId) -> Option<&BoardRecord> {
        self.boards.get(id)
    }

    pub fn boards(&self) -> impl Iterator<Item = &BoardRecord> {
        self.boards.values()
    }

    pub fn column(&self, id: &ColumnId) -> Option<&Column> {
        self.columns.get(id)
    }

    /// A board's columns in board order.
    pub fn columns_of(&self, board: &BoardId) -> Vec<&Column> {
        let mut columns: Vec<&Column> = self
            .columns
            .values()
            .filter(|c| c.board_id == *board)
            .collect();
        columns.sort_by(|a, b| a.position.total_cmp(&b.position).then(a.id.cmp(&b.id)));
        columns
    }

    /// The explicit members of a board (the default board has none: every
    /// user is on it with their site role).
    pub fn members_of(&self, board: &BoardId) -> Vec<(&str, BoardRole)> {
        self.members
            .get(board)
            .map(|m| m.iter().map(|(u, r)| (u.as_str(), *r)).collect())
            .unwrap_or_default()
    }

    /// What `user` (with site role `site`) may do on `board`; `None`: the
    /// board does not exist for them. A site admin is admin everywhere;
    /// on the default board everyone has their site role.
    pub fn role(&self, board: &BoardId, user: &str, site: Role) -> Option<BoardRole> {
        self.boards.get(board)?;
        if site == Role::Admin {
            return Some(BoardRole::Admin);
        }
        if board.is_default() {
            return Some(match site {
                Role::Admin => BoardRole::Admin,
                Role::Member => BoardRole::Member,
                Role::Viewer => BoardRole::Viewer,
            });
        }
        let role = self.members.get(board)?.get(user).copied()?;
        // A site viewer never edits, whatever a board says.
        Some(if site == Role::Viewer {
            BoardRole::Viewer
        } else {
            role
        })
    }

    pub fn counts(&self, column: &ColumnId) -> Counts {
        self.counts.get(column).copied().unwrap_or_default()
    }

    /// The cards of every column counted, in no particular order.
    pub fn all_counts(&self) -> impl Iterator<Item = (&ColumnId, &Counts)> {
        self.counts.iter()
    }

    /// The share of every board's cards (live and archived) that are on
    /// `boards` (`None`: all of them); 1 while no card is counted.
    pub fn share_of_cards(&self, boards: Option<&[BoardId]>) -> f64 {
        let boards: Option<HashSet<&BoardId>> = boards.map(|b| b.iter().collect());
        let (mut on, mut all) = (0u64, 0u64);
        for column in self.columns.values() {
            let cards = self.counts(&column.id).total();
            all += cards;
            if boards.as_ref().is_none_or(|b| b.contains(&column.board_id)) {
                on += cards;
            }
        }
        if all == 0 {
            1.0
        } else {
            on as f64 / all as f64
        }
    }

    /// The column a stored placement names.
    pub fn column_of(column: Option<ColumnId>, status: Status) -> ColumnId {
        column.unwrap_or_else(|| fixed_column(status))
    }

    /// Where a task goes: to `column` if named, else to the column of
    /// `board` (or of `current`, the card's board, or the default board)
    /// whose key is `key`, else its first column of `category`, else its
    /// first column.
    pub fn place(
        &self,
        board: Option<BoardId>,
        column: Option<ColumnId>,
        key: Option<&str>,
        category: Option<Status>,
        current: Option<BoardId>,
    ) -> Result<Place, CatalogRejection> {
        if let Some(id) = column {
            let col = self
                .columns
                .get(&id)
                .ok_or(CatalogRejection::ColumnNotFound { id })?;
            if let Some(board) = board {
                if board != col.board_id {
                    return Err(CatalogRejection::ColumnElsewhere { column: id, board });
                }
            }
            self.open_board(&col.board_id)?;
            return Ok(Place {
                board_id: col.board_id,
                column_id: id,
                status: col.category,
            });
        }
        let board = board.or(current).unwrap_or(DEFAULT_BOARD);
        self.open_board(&board)?;
        let columns = self.columns_of(&board);
        let chosen = key
            .and_then(|k| columns.iter().find(|c| c.key == k))
            .or_else(|| category.and_then(|s| columns.iter().find(|c| c.category == s)))
            .or_else(|| columns.first())
            .ok_or(CatalogRejection::BoardNotFound { id: board })?;
        Ok(Place {
            board_id: board,
            column_id: chosen.id,
            status: chosen.category,
        })
    }

    fn open_board(&self, id: &BoardId) -> Result<&BoardRecord, CatalogRejection> {
        let board = self
            .boards
            .get(id)
            .ok_or(CatalogRejection::BoardNotFound { id: *id })?;
        if board.archived {
            return Err(CatalogRejection::BoardArchived { id: *id });
        }
        Ok(board)
    }

    /// The position after the last card ever put in a column that is not
    /// fixed.
    pub fn next_position(&self, column: &ColumnId) -> f64 {
        self.tails.get(column).copied().unwrap_or(0.0) + POSITION_STEP
    }

    /// Records a card at `position` in `column` (not fixed); the tail only
    /// grows.
    pub fn raise(&mut self, column: ColumnId, position: f64) {
        let tail = self.tails.entry(column).or_insert(0.0);
        if position > *tail {
            *tail = position;
            self.dirty.columns.insert(column);
        }
    }

    pub fn tail(&self, column: &ColumnId) -> f64 {
        self.tails.get(column).copied().unwrap_or(0.0)
    }

    /// A card left `from` and/or arrived in `to` (each: column, archived).
    pub fn moved(&mut self, from: Option<(ColumnId, bool)>, to: Option<(ColumnId, bool)>) {
        if from == to {
            return;
        }
        if let Some((column, archived)) = from {
            self.dirty.counts.insert(column);
            let counts = self.counts.entry(column).or_default();
            let n = if archived {
                &mut counts.archived
            } else {
                &mut counts.live
            };
            *n = n.saturating_sub(1);
        }
        if let Some((column, archived)) = to {
            self.dirty.counts.insert(column);
            let counts = self.counts.entry(column).or_default();
            if archived {
                counts.archived += 1;
            } else {
                counts.live += 1;
            }
        }
    }

    /// Decides and applies one catalog command; `actor` is who asked (a new
    /// board's first admin).
    pub fn apply(
        &mut self,
        op: &CatalogOp<'_>,
        actor: &str,
    ) -> Result<Vec<Cataloged>, CatalogRejection> {
        match *op {
            CatalogOp::BoardCreate(new) => {
                let taken = self.boards.contains_key(&new.id)
                    || new.columns.iter().any(|c| self.columns.contains_key(c));
                if taken {
                    return Err(CatalogRejection::IdTaken { id: new.id.0 });
                }
                let board = BoardRecord {
                    id: new.id,
                    name: new.name.clone(),
                    archived: false,
                };
                self.boards.insert(new.id, board.clone());
                self.dirty.boards.insert(new.id);
                // One event each: the board, its columns, its first admin,
                // so that a fold of the events alone rebuilds them.
                let mut done = vec![Cataloged::Board(board)];
                for ((status, name), id) in Status::ALL
                    .into_iter()
                    .zip(DEFAULT_COLUMN_NAMES)
                    .zip(new.columns)
                {
                    let column = Column {
                        id,
                        board_id: new.id,
                        name: name.into(),
                        key: status.as_str().into(),
                        category: status,
                        position: (status.rank() as f64 + 1.0) * COLUMN_STEP,
                        wip_limit: None,
                        color: None,
                        archive_after_days: None,
                        version: 1,
                    };
                    self.columns.insert(id, column.clone());
                    self.dirty.columns.insert(id);
                    done.push(Cataloged::Column(column));
                }
                // A user (their id is a UUID), not the system, the service
                // token or an anonymous caller with accounts off.
                if Uuid::parse_str(actor).is_ok() {
                    self.members
                        .entry(new.id)
                        .or_default()
                        .insert(actor.to_string(), BoardRole::Admin);
                    self.dirty.members.insert((new.id, actor.to_string()));
                    done.push(Cataloged::Member(BoardMember {
                        board_id: new.id,
                        user_id: actor.to_string(),
                        role: Some(BoardRole::Admin),
                    }));
                }
                Ok(done)
            }
            CatalogOp::BoardUpdate { id, name, archived } => {
                let board = self
                    .boards
                    .get(id)
                    .ok_or(CatalogRejection::BoardNotFound { id: *id })?;
                if id.is_default() && *archived == Some(true) {
                    return Err(CatalogRejection::DefaultBoard);
                }
                let updated = BoardRecord {
                    id: *id,
                    name: name.clone().unwrap_or_else(|| board.name.clone()),
                    archived: archived.unwrap_or(board.archived),
                };
                if &updated == board {
                    return Ok(Vec::new());
                }
                self.boards.insert(*id, updated.clone());
                self.dirty.boards.insert(*id);
                Ok(vec![Cataloged::Board(updated)])
            }
            CatalogOp::MemberSet {
                board_id,
                user_id,
                role,
            } => {
                self.boards
                    .get(board_id)
                    .ok_or(CatalogRejection::BoardNotFound { id: *board_id })?;
                let members = self.members.entry(*board_id).or_default();
                let before = members.get(user_id).copied();
                if before == *role {
                    return Ok(Vec::new());
                }
                match role {
                    Some(role) => members.insert(user_id.to_string(), *role),
                    None => members.remove(user_id),
                };
                self.dirty.members.insert((*board_id, user_id.to_string()));
                Ok(vec![Cataloged::Member(BoardMember {
                    board_id: *board_id,
                    user_id: user_id.to_string(),
                    role: *role,
                })])
            }
            CatalogOp::ColumnCreate(new) => {
                if self.columns.contains_key(&new.id) {
                    return Err(CatalogRejection::IdTaken { id: new.id.0 });
                }
                self.open_board(&new.board_id)?;
                let siblings = self.columns_of(&new.board_id);
                let position = new.position.unwrap_or_else(|| {
                    siblings
                        .last()
                        .map_or(COLUMN_STEP, |c| c.position + COLUMN_STEP)
                });
                let key = unique_key(&new.name, &siblings);
                let column = Column {
                    id: new.id,
                    board_id: new.board_id,
                    name: new.name.clone(),
                    key,
                    category: new.category.unwrap_or(Status::InProgress),
                    position,
                    wip_limit: new.wip_limit,
                    color: new.color.clone(),
                    archive_after_days: new.archive_after_days,
                    version: 1,
                };
                self.columns.insert(new.id, column.clone());
                self.dirty.columns.insert(new.id);
                Ok(vec![Cataloged::Column(column)])
            }
            CatalogOp::ColumnUpdate {
                id,
                expected_version,
                patch,
            } => {
                let column = self
                    .columns
                    .get(id)
                    .ok_or(CatalogRejection::ColumnNotFound { id: *id })?;
                expect_version(column, *expected_version)?;
                if patch.category.is_some_and(|c| c != column.category)
                    && (fixed_status(*id).is_some() || self.counts(id).total() > 0)
                {
                    // The cards' status is the category: changing it would
                    // change every card without an event of its own.
                    return Err(CatalogRejection::ColumnNotEmpty {
                        id: *id,
                        cards: self.counts(id).total(),
                    });
                }
                let updated = Column {
                    name: patch.name.clone().unwrap_or_else(|| column.name.clone()),
                    position: patch.position.unwrap_or(column.position),
                    wip_limit: patch.wip_limit.unwrap_or(column.wip_limit),
                    color: patch.color.clone().unwrap_or_else(|| column.color.clone()),
                    category: patch.category.unwrap_or(column.category),
                    archive_after_days: patch
                        .archive_after_days
                        .unwrap_or(column.archive_after_days),
                    ..column.clone()
                };
                if &updated == column {
                    return Ok(Vec::new());
                }
                let updated = Column {
                    version: column.version + 1,
                    ..updated
                };
                self.columns.insert(*id, updated.clone());
                self.dirty.columns.insert(*id);
                Ok(vec![Cataloged::Column(updated)])
            }
            CatalogOp::ColumnDelete {
                id,
                expected_version,
            } => {
                let column = self
                    .columns
                    .get(id)
                    .ok_or(CatalogRejection::ColumnNotFound { id: *id })?;
                expect_version(column, *expected_version)?;
                if fixed_status(*id).is_some() {
                    return Err(CatalogRejection::FixedColumn { id: *id });
                }
                let cards = self.counts(id).total();
                if cards > 0 {
                    return Err(CatalogRejection::ColumnNotEmpty { id: *id, cards });
                }
                if self.columns_of(&column.board_id).len() <= 1 {
                    return Err(CatalogRejection::LastColumn { id: *id });
                }
                let column = self.columns.remove(id).expect("checked above");
                self.tails.remove(id);
                self.counts.remove(id);
                self.dirty.columns.insert(*id);
                Ok(vec![Cataloged::ColumnDeleted(column)])
            }
        }
    }

    /// Folds in what a catalog event recorded (rebuild, catch-up, restore).
    pub fn fold(&mut self, cataloged: &Cataloged) {
        match cataloged {
            Cataloged::Board(board) => {
                self.boards.insert(board.id, board.clone());
                self.dirty.boards.insert(board.id);
            }
            Cataloged::Column(column) => {
                let version = if column.version > 0 {
                    column.version
                } else {
                    // An event from before versions: the rule `apply`
                    // follows, 1 when made and one more per change.
                    self.columns.get(&column.id).map_or(1, |c| c.version + 1)
                };
                self.columns.insert(
                    column.id,
                    Column {
                        version,
                        ..column.clone()
                    },
                );
                self.dirty.columns.insert(column.id);
            }
            Cataloged::ColumnDeleted(column) => {
                self.columns.remove(&column.id);
                self.tails.remove(&column.id);
                self.counts.remove(&column.id);
                self.dirty.columns.insert(column.id);
            }
            Cataloged::Member(member) => {
                let members = self.members.entry(member.board_id).or_default();
                match member.role {
                    Some(role) => members.insert(member.user_id.clone(), role),
                    None => members.remove(&member.user_id),
                };
                self.dirty
                    .members
                    .insert((member.board_id, member.user_id.clone()));
            }
        }
    }

    /// The rows changed since the last call.
    pub fn take_dirty(&mut self) -> CatalogDirty {
        std::mem::take(&mut self.dirty)
    }

    pub fn is_dirty(&self) -> bool {
        !self.dirty.is_empty()
    }

    /// Every row the catalog's tables hold for it, in a fixed order:
    /// boards, columns with their tails, members (compared by rebuild).
    pub fn rows(&self) -> CatalogRows {
        let mut columns: Vec<(Column, f64)> = self
            .columns
            .values()
            .map(|c| (c.clone(), self.tail(&c.id)))
            .collect();
        columns.sort_by_key(|(c, _)| c.id);
        CatalogRows {
            boards: self.boards.values().cloned().collect(),
            columns,
            members: self
                .members
                .iter()
                .flat_map(|(b, m)| m.iter().map(|(u, r)| (*b, u.clone(), *r)))
                .collect(),
        }
    }

    /// A member's role as stored (no site role applied).
    pub fn member(&self, board: &BoardId, user: &str) -> Option<BoardRole> {
        self.members.get(board)?.get(user).copied()
    }
}

/// The catalog's rows (see [`Catalog::rows`]).
#[derive(Debug, PartialEq)]
pub struct CatalogRows {
    pub boards: Vec<BoardRecord>,
    pub columns: Vec<(Column, f64)>,
    pub members: Vec<(BoardId, String, BoardRole)>,
}

/// A catalog command, borrowed from the log entry.
#[derive(Clone, Copy, Debug)]
pub enum CatalogOp<'a> {
    BoardCreate(&'a NewBoard),
    BoardUpdate {
        id: &'a BoardId,
        name: &'a Option<String>,
        archived: &'a Option<bool>,
    },
    MemberSet {
        board_id: &'a BoardId,
        user_id: &'a str,
        role: &'a Option<BoardRole>,
    },
    ColumnCreate(&'a NewColumn),
    ColumnUpdate {
        id: &'a ColumnId,
        expected_version: &'a Option<u64>,
        patch: &'a ColumnPatch,
    },
    ColumnDelete {
        id: &'a ColumnId,
        expected_version: &'a Option<u64>,
    },
}

/// Refuses a change to `column` that expected another version of it
/// (`None`: any version, a change without `If-Match`).
pub fn expect_version(column: &Column, expected: Option<u64>) -> Result<(), CatalogRejection> {
    match expected {
        Some(expected) if expected != column.version => {
            Err(CatalogRejection::ColumnVersionMismatch {
                expected,
                current: Box::new(column.clone()),
            })
        }
        _ => Ok(()),
    }
}

/// A key for a column named `name`, unique among `siblings`: the name in
/// lower case with `_` for anything not a letter or digit, numbered when
/// taken.
fn unique_key(name: &str, siblings: &[&Column]) -> String {
    let mut base: String = name
        .chars()
        .map(|c| {
            if c.is_alphanumeric() {
                c.to_lowercase().next().unwrap_or(c)
            } else {
                '_'
            }
        })
        .collect::<String>()
        .trim_matches('_')
        .chars()
        .take(40)
        .collect();
    if base.is_empty() {
        base = "column".into();
    }
    let taken = |k: &str| siblings.iter().any(|c| c.key == k);
    if !taken(&base) {
        return base;
    }
    (2..)
        .map(|n| format!("{base}_{n}"))
        .find(|k| !taken(k))
        .expect("some number is free")
}

#[cfg(test)]
mod share_tests {
    use super::*;

    #[test]
    fn the_share_of_cards_counts_live_and_archived_cards_of_the_boards_named() {
        let mut catalog = Catalog::default();
        assert_eq!(catalog.share_of_cards(None), 1.0, "no card counted");
        assert_eq!(catalog.share_of_cards(Some(&[])), 1.0, "no card counted");
        let todo = fixed_column(Status::Todo);
        let done = fixed_column(Status::Done);
        for _ in 0..3 {
            catalog.moved(None, Some((todo, false)));
        }
        catalog.moved(None, Some((done, true)));
        assert_eq!(catalog.share_of_cards(Some(&[DEFAULT_BOARD])), 1.0);
        let other = BoardId(Uuid::from_u128(7));
        let column = ColumnId(Uuid::from_u128(8));
        catalog.columns.insert(
            column,
            Column {
                id: column,
                board_id: other,
                ..catalog.columns[&todo].clone()
            },
        );
        for _ in 0..12 {
            catalog.moved(None, Some((column, false)));
        }
        assert_eq!(catalog.share_of_cards(Some(&[DEFAULT_BOARD])), 0.25);
        assert_eq!(catalog.share_of_cards(Some(&[other])), 0.75);
        assert_eq!(catalog.share_of_cards(Some(&[])), 0.0);
        assert_eq!(catalog.share_of_cards(None), 1.0);
    }
}
