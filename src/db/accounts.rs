//! The account tables (`users`, `sessions`, `api_tokens`): written by the
//! applier from account commands, read whole at start-up into memory, and
//! copied whole to a peer catching up.

use mysql_async::prelude::*;
use serde::{Deserialize, Serialize};

use super::rows::parsed;
use super::sql::Sql;
use super::DbError;
use crate::accounts::{AccountChanges, Accounts, Role, Session, Token, User};
use crate::time::Timestamp;

/// Every row of the three tables.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AccountRows {
    pub users: Vec<User>,
    pub sessions: Vec<Session>,
    pub tokens: Vec<Token>,
}

impl AccountRows {
    pub fn of(accounts: &Accounts) -> AccountRows {
        AccountRows {
            users: accounts.all_users().cloned().collect(),
            sessions: accounts.all_sessions().cloned().collect(),
            tokens: accounts.all_tokens().cloned().collect(),
        }
    }

    pub fn into_accounts(self) -> Accounts {
        Accounts::from_rows(self.users, self.sessions, self.tokens)
    }
}

type UserRow = (String, String, String, String, bool, String, u64, i64, i64);
type SessionRow = (String, String, u64, i64, i64, bool);
type TokenRow = (String, String, String, String, i64, Option<i64>, bool);

/// Reads the three tables.
pub async fn load(conn: &mut impl Queryable) -> Result<AccountRows, DbError> {
    let users: Vec<UserRow> = conn
        .query(
            "SELECT id, username, display_name, role, disabled, password_hash, sessions_after, \
             created_at, updated_at FROM users",
        )
        .await?;
    let sessions: Vec<SessionRow> = conn
        .query("SELECT hash, user_id, created_index, created_at, expires_at, ended FROM sessions")
        .await?;
    let tokens: Vec<TokenRow> = conn
        .query("SELECT id, hash, user_id, name, created_at, expires_at, revoked FROM api_tokens")
        .await?;
    let users = users
        .into_iter()
        .map(
            |(id, username, display_name, role, disabled, hash, after, created, updated)| {
                Ok(User {
                    id: parsed(&id, "users.id")?,
                    username,
                    display_name,
                    role: parsed::<Role>(&role, "users.role")?,
                    disabled,
                    password_hash: hash,
                    sessions_after: after,
                    created_at: Timestamp(created),
                    updated_at: Timestamp(updated),
                })
            },
        )
        .collect::<Result<_, DbError>>()?;
    let sessions = sessions
        .into_iter()
        .map(|(hash, user_id, index, created, expires, ended)| {
            Ok(Session {
                hash,
                user_id: parsed(&user_id, "sessions.user_id")?,
                created_index: index,
                created_at: Timestamp(created),
                expires_at: Timestamp(expires),
                ended,
            })
        })
        .collect::<Result<_, DbError>>()?;
    let tokens = tokens
        .into_iter()
        .map(|(id, hash, user_id, name, created, expires, revoked)| {
            Ok(Token {
                id: parsed(&id, "api_tokens.id")?,
                hash,
                user_id: parsed(&user_id, "api_tokens.user_id")?,
                name,
                created_at: Timestamp(created),
                expires_at: expires.map(Timestamp),
                revoked,
            })
        })
        .collect::<Result<_, DbError>>()?;
    Ok(AccountRows {
        users,
        sessions,
        tokens,
    })
}

fn millis(sql: &mut Sql, at: Timestamp) {
    sql.uint(at.0.max(0) as u64);
}

fn flag(sql: &mut Sql, value: bool) {
    sql.push(if value { "1" } else { "0" });
}

fn write_user(sql: &mut Sql, u: &User) {
    sql.push("(")
        .ascii(&u.id.to_string())
        .push(", ")
        .text(&u.username)
        .push(", ")
        .text(&u.display_name)
        .push(", ")
        .ascii(u.role.as_str())
        .push(", ");
    flag(sql, u.disabled);
    sql.push(", ")
        .ascii(&u.password_hash)
        .push(", ")
        .uint(u.sessions_after)
        .push(", ");
    millis(sql, u.created_at);
    sql.push(", ");
    millis(sql, u.updated_at);
    sql.push(")");
}

fn write_session(sql: &mut Sql, s: &Session) {
    sql.push("(")
        .ascii(&s.hash)
        .push(", ")
        .ascii(&s.user_id.to_string())
        .push(", ")
        .uint(s.created_index)
        .push(", ");
    millis(sql, s.created_at);
    sql.push(", ");
    millis(sql, s.expires_at);
    sql.push(", ");
    flag(sql, s.ended);
    sql.push(")");
}

fn write_token(sql: &mut Sql, t: &Token) {
    sql.push("(")
        .ascii(&t.id.to_string())
        .push(", ")
        .ascii(&t.hash)
        .push(", ")
        .ascii(&t.user_id.to_string())
        .push(", ")
        .text(&t.name)
        .push(", ");
    millis(sql, t.created_at);
    sql.push(", ");
    match t.expires_at {
        Some(at) => millis(sql, at),
        None => {
            sql.push("NULL");
        }
    }
    sql.push(", ");
    flag(sql, t.revoked);
    sql.push(")");
}

const USER_COLUMNS: &str = "id, username, display_name, role, disabled, password_hash, \
                            sessions_after, created_at, updated_at";
const SESSION_COLUMNS: &str = "hash, user_id, created_index, created_at, expires_at, ended";
const TOKEN_COLUMNS: &str = "id, hash, user_id, name, created_at, expires_at, revoked";

/// Statements writing `rows` (whole rows: REPLACE, so an insert and an
/// update are the same statement).
pub fn write_rows(sql: &mut Sql, limit: usize, rows: &AccountRows) {
    sql.rows(
        limit,
        &["REPLACE INTO users (", USER_COLUMNS, ") VALUES "],
        "",
        &rows.users,
        write_user,
    );
    sql.rows(
        limit,
        &["REPLACE INTO sessions (", SESSION_COLUMNS, ") VALUES "],
        "",
        &rows.sessions,
        write_session,
    );
    sql.rows(
        limit,
        &["REPLACE INTO api_tokens (", TOKEN_COLUMNS, ") VALUES "],
        "",
        &rows.tokens,
        write_token,
    );
}

/// Sessions deleted per statement.
const DELETE_CHUNK: usize = 500;

/// Statements deleting the sessions `changes` pruned.
pub fn delete_removed(sql: &mut Sql, changes: &AccountChanges) {
    let hashes: Vec<&String> = changes.removed_sessions.iter().collect();
    for chunk in hashes.chunks(DELETE_CHUNK) {
        sql.push("DELETE FROM sessions WHERE hash IN (");
        for (i, hash) in chunk.iter().enumerate() {
            if i > 0 {
                sql.push(", ");
            }
            sql.ascii(hash);
        }
        sql.push(")").end();
    }
}

/// The rows `changes` names, as `accounts` now holds them.
pub fn changed_rows(accounts: &Accounts, changes: &AccountChanges) -> AccountRows {
    AccountRows {
        users: changes
            .users
            .iter()
            .filter_map(|id| accounts.user(id).cloned())
            .collect(),
        sessions: changes
            .sessions
            .iter()
            .filter_map(|hash| accounts.session(hash).cloned())
            .collect(),
        tokens: changes
            .tokens
            .iter()
            .filter_map(|id| accounts.token(id).cloned())
            .collect(),
    }
}

/// Statements replacing the three tables' contents with `rows` (a
/// catch-up installs a peer's accounts whole).
pub fn replace_all(sql: &mut Sql, limit: usize, rows: &AccountRows) {
    sql.end()
        .push("DELETE FROM users")
        .end()
        .push("DELETE FROM sessions")
        .end()
        .push("DELETE FROM api_tokens")
        .end();
    write_rows(sql, limit, rows);
}
