//! The accounts state machine: [`Accounts::apply`] over account commands.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::access::{Ended, Via};
use super::{Actor, Role};
use crate::time::Timestamp;

/// A user as stored and replicated. `password_hash` never leaves the node
/// except in the log and the `users` table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub id: Uuid,
    /// Lower case, `[a-z0-9._-]`, 1–64 characters; never changes.
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
    pub password_hash: String,
    /// Sessions created at or before this log index are no longer valid
    /// (the password changed at this index).
    pub sessions_after: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A user as the api shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserView {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub disabled: bool,
}

impl User {
    pub fn view(&self) -> UserView {
        UserView {
            id: self.id,
            username: self.username.clone(),
            display_name: self.display_name.clone(),
            role: self.role,
            disabled: self.disabled,
        }
    }

    pub fn actor(&self) -> Actor {
        Actor {
            id: self.id.to_string(),
            name: self.username.clone(),
        }
    }
}

/// A login session. The cookie holds a secret; only its hash is here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub hash: String,
    pub user_id: Uuid,
    /// The log entry that created it (see [`User::sessions_after`]).
    pub created_index: u64,
    pub created_at: Timestamp,
    pub expires_at: Timestamp,
    /// Logged out. Kept until the next `prune_sessions` entry removes it:
    /// a node re-applying the entry that created it (after copying a
    /// peer's tables in a catch-up) re-applies that prune too.
    pub ended: bool,
}

/// A personal API token. Only its hash is here.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Token {
    pub id: Uuid,
    pub hash: String,
    pub user_id: Uuid,
    pub name: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewUser {
    pub id: Uuid,
    pub username: String,
    pub display_name: String,
    pub role: Role,
    pub password_hash: String,
}

/// The fields a user update changes; `None` keeps a field.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct UserUpdate {
    pub id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disabled: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_hash: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewSession {
    pub hash: String,
    pub user_id: Uuid,
    pub expires_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewToken {
    pub id: Uuid,
    pub hash: String,
    pub user_id: Uuid,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Timestamp>,
}

/// What an account command came to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "account", rename_all = "snake_case")]
pub enum AccountOutcome {
    User {
        user: UserView,
    },
    Session {
        user: UserView,
    },
    Token {
        id: Uuid,
        name: String,
    },
    /// `prune_sessions`: how many sessions were removed.
    Pruned {
        sessions: u64,
    },
    Done,
    Rejected {
        rejection: AccountRejection,
    },
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum AccountRejection {
    UsernameTaken {
        username: String,
    },
    /// The id is already in use (also: the entry is being re-applied).
    IdTaken {
        id: String,
    },
    UserNotFound {
        id: Uuid,
    },
    UserDisabled {
        id: Uuid,
    },
    TokenNotFound {
        id: Uuid,
    },
    SessionNotFound,
    /// `bootstrap_admin` once the cluster has users: nothing to do.
    HasUsers,
    /// The last enabled admin cannot be demoted or disabled.
    LastAdmin,
}

/// The ids an account batch changed, for the applier to write.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AccountChanges {
    pub users: BTreeSet<Uuid>,
    pub sessions: BTreeSet<String>,
    pub tokens: BTreeSet<Uuid>,
    /// Sessions pruned: their rows are deleted.
    pub removed_sessions: BTreeSet<String>,
}

impl AccountChanges {
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
            && self.sessions.is_empty()
            && self.tokens.is_empty()
            && self.removed_sessions.is_empty()
    }
}

/// Every user, session and token.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Accounts {
    users: HashMap<Uuid, User>,
    by_name: HashMap<String, Uuid>,
    sessions: HashMap<String, Session>,
    tokens: HashMap<Uuid, Token>,
    token_by_hash: HashMap<String, Uuid>,
}

impl Accounts {
    pub fn from_rows(
        users: impl IntoIterator<Item = User>,
        sessions: impl IntoIterator<Item = Session>,
        tokens: impl IntoIterator<Item = Token>,
    ) -> Accounts {
        let mut accounts = Accounts::default();
        for user in users {
            accounts.put_user(user);
        }
        for session in sessions {
            accounts.sessions.insert(session.hash.clone(), session);
        }
        for token in tokens {
            accounts.put_token(token);
        }
        accounts
    }

    fn put_user(&mut self, user: User) {
        self.by_name.insert(user.username.clone(), user.id);
        self.users.insert(user.id, user);
    }

    fn put_token(&mut self, token: Token) {
        self.token_by_hash.insert(token.hash.clone(), token.id);
        self.tokens.insert(token.id, token);
    }

    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    pub fn user(&self, id: &Uuid) -> Option<&User> {
        self.users.get(id)
    }

    pub fn user_by_name(&self, username: &str) -> Option<&User> {
        self.by_name.get(username).and_then(|id| self.users.get(id))
    }

    /// Every user, by username.
    pub fn users(&self) -> Vec<&User> {
        let mut users: Vec<&User> = self.users.values().collect();
        users.sort_by(|a, b| a.username.cmp(&b.username));
        users
    }

    pub fn session(&self, hash: &str) -> Option<&Session> {
        self.sessions.get(hash)
    }

    pub fn token(&self, id: &Uuid) -> Option<&Token> {
        self.tokens.get(id)
    }

    pub fn token_by_hash(&self, hash: &str) -> Option<&Token> {
        self.token_by_hash
            .get(hash)
            .and_then(|id| self.tokens.get(id))
    }

    /// A user's tokens (all users' for `None`), newest first.
    pub fn tokens(&self, owner: Option<Uuid>) -> Vec<&Token> {
        let mut tokens: Vec<&Token> = self
            .tokens
            .values()
            .filter(|t| owner.is_none_or(|o| t.user_id == o))
            .collect();
        tokens.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
        tokens
    }

    pub fn all_sessions(&self) -> impl Iterator<Item = &Session> {
        self.sessions.values()
    }

    pub fn all_tokens(&self) -> impl Iterator<Item = &Token> {
        self.tokens.values()
    }

    pub fn all_users(&self) -> impl Iterator<Item = &User> {
        self.users.values()
    }

    /// The user a live session belongs to, if the session and the user are
    /// still good at `now`.
    pub fn session_user(&self, hash: &str, now: Timestamp) -> Option<&User> {
        let session = self.sessions.get(hash)?;
        let user = self.users.get(&session.user_id)?;
        let valid = !session.ended
            && session.expires_at > now
            && session.created_index > user.sessions_after
            && !user.disabled;
        valid.then_some(user)
    }

    /// The user a live token belongs to, with the token.
    pub fn token_user(&self, hash: &str, now: Timestamp) -> Option<(&Token, &User)> {
        let token = self.token_by_hash(hash)?;
        let user = self.users.get(&token.user_id)?;
        let valid = !token.revoked && token.expires_at.is_none_or(|e| e > now) && !user.disabled;
        valid.then_some((token, user))
    }

    /// Whether a credential a request was admitted with (a WebSocket's,
    /// held open) is still good at `now`, and if not, why. Credentials
    /// that are not accounts (the service token, peers, `auth = "off"`)
    /// do not end here.
    pub fn credential(&self, via: &Via, now: Timestamp) -> Result<(), Ended> {
        let user_of = |id: &Uuid| {
            let user = self.users.get(id).ok_or(Ended::Disabled)?;
            if user.disabled {
                return Err(Ended::Disabled);
            }
            Ok(user)
        };
        match via {
            Via::Session { hash, .. } => {
                let session = self.sessions.get(hash).ok_or(Ended::LoggedOut)?;
                if session.ended {
                    return Err(Ended::LoggedOut);
                }
                let user = user_of(&session.user_id)?;
                if session.created_index <= user.sessions_after {
                    return Err(Ended::PasswordChanged);
                }
                if session.expires_at <= now {
                    return Err(Ended::Expired);
                }
                Ok(())
            }
            Via::Token { id } => {
                let token = self.tokens.get(id).ok_or(Ended::Revoked)?;
                if token.revoked {
                    return Err(Ended::Revoked);
                }
                user_of(&token.user_id)?;
                if token.expires_at.is_some_and(|at| at <= now) {
                    return Err(Ended::Expired);
                }
                Ok(())
            }
            Via::Proxy { user_id, .. } => user_of(user_id).map(|_| ()),
            Via::Service | Via::Peer { .. } | Via::Open => Ok(()),
        }
    }

    /// The sessions `prune_sessions` with this cutoff removes: those that
    /// can never be good again (logged out, made before their user's
    /// password change, expiring at or before `before`). A disabled user's
    /// sessions are kept: enabling the user again restores them.
    pub fn prunable_sessions(&self, before: Timestamp) -> Vec<&str> {
        let mut hashes: Vec<&str> = self
            .sessions
            .values()
            .filter(|s| {
                s.ended
                    || s.expires_at <= before
                    || self
                        .users
                        .get(&s.user_id)
                        .is_none_or(|u| s.created_index <= u.sessions_after)
            })
            .map(|s| s.hash.as_str())
            .collect();
        hashes.sort_unstable();
        hashes
    }

    fn enabled_admins(&self) -> usize {
        self.users
            .values()
            .filter(|u| u.role == Role::Admin && !u.disabled)
            .count()
    }

    /// Applies an account command taken from log entry `index`, proposed
    /// at `at`. Records what changed in `changes`.
    pub fn apply(
        &mut self,
        index: u64,
        at: Timestamp,
        op: AccountOp<'_>,
        changes: &mut AccountChanges,
    ) -> AccountOutcome {
        use AccountOutcome as O;
        use AccountRejection as R;
        let reject = |rejection| O::Rejected { rejection };
        match op {
            AccountOp::UserCreate(new) | AccountOp::BootstrapAdmin(new) => {
                if matches!(op, AccountOp::BootstrapAdmin(_)) && self.has_users() {
                    return reject(R::HasUsers);
                }
                if self.users.contains_key(&new.id) {
                    return reject(R::IdTaken {
                        id: new.id.to_string(),
                    });
                }
                if self.by_name.contains_key(&new.username) {
                    return reject(R::UsernameTaken {
                        username: new.username.clone(),
                    });
                }
                let user = User {
                    id: new.id,
                    username: new.username.clone(),
                    display_name: new.display_name.clone(),
                    role: new.role,
                    disabled: false,
                    password_hash: new.password_hash.clone(),
                    sessions_after: 0,
                    created_at: at,
                    updated_at: at,
                };
                let view = user.view();
                self.put_user(user);
                changes.users.insert(new.id);
                O::User { user: view }
            }
            AccountOp::UserUpdate(update) => {
                let Some(current) = self.users.get(&update.id) else {
                    return reject(R::UserNotFound { id: update.id });
                };
                let mut user = current.clone();
                if let Some(role) = update.role {
                    user.role = role;
                }
                if let Some(disabled) = update.disabled {
                    user.disabled = disabled;
                }
                if let Some(name) = &update.display_name {
                    user.display_name = name.clone();
                }
                if let Some(hash) = &update.password_hash {
                    user.password_hash = hash.clone();
                    user.sessions_after = user.sessions_after.max(index);
                }
                let was_admin = current.role == Role::Admin && !current.disabled;
                let is_admin = user.role == Role::Admin && !user.disabled;
                if was_admin && !is_admin && self.enabled_admins() == 1 {
                    return reject(R::LastAdmin);
                }
                if &user != current {
                    user.updated_at = at.max(current.updated_at);
                    changes.users.insert(user.id);
                }
                let view = user.view();
                self.put_user(user);
                O::User { user: view }
            }
            AccountOp::SessionCreate(new) => {
                if self.sessions.contains_key(&new.hash) {
                    return reject(R::IdTaken {
                        id: "session".into(),
                    });
                }
                let Some(user) = self.users.get(&new.user_id) else {
                    return reject(R::UserNotFound { id: new.user_id });
                };
                if user.disabled {
                    return reject(R::UserDisabled { id: user.id });
                }
                let view = user.view();
                self.sessions.insert(
                    new.hash.clone(),
                    Session {
                        hash: new.hash.clone(),
                        user_id: new.user_id,
                        created_index: index,
                        created_at: at,
                        expires_at: new.expires_at,
                        ended: false,
                    },
                );
                changes.sessions.insert(new.hash.clone());
                O::Session { user: view }
            }
            AccountOp::SessionEnd { hash } => {
                let Some(session) = self.sessions.get_mut(hash) else {
                    return reject(R::SessionNotFound);
                };
                if !session.ended {
                    session.ended = true;
                    changes.sessions.insert(hash.to_string());
                }
                O::Done
            }
            AccountOp::TokenCreate(new) => {
                if self.tokens.contains_key(&new.id) || self.token_by_hash.contains_key(&new.hash) {
                    return reject(R::IdTaken {
                        id: new.id.to_string(),
                    });
                }
                if !self.users.contains_key(&new.user_id) {
                    return reject(R::UserNotFound { id: new.user_id });
                }
                self.put_token(Token {
                    id: new.id,
                    hash: new.hash.clone(),
                    user_id: new.user_id,
                    name: new.name.clone(),
                    created_at: at,
                    expires_at: new.expires_at,
                    revoked: false,
                });
                changes.tokens.insert(new.id);
                O::Token {
                    id: new.id,
                    name: new.name.clone(),
                }
            }
            AccountOp::TokenRevoke { id } => {
                let Some(token) = self.tokens.get_mut(&id) else {
                    return reject(R::TokenNotFound { id });
                };
                if !token.revoked {
                    token.revoked = true;
                    changes.tokens.insert(id);
                }
                O::Done
            }
            AccountOp::PruneSessions { before } => {
                let pruned: Vec<String> = self
                    .prunable_sessions(before)
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                for hash in &pruned {
                    self.sessions.remove(hash);
                    changes.sessions.remove(hash);
                    changes.removed_sessions.insert(hash.clone());
                }
                O::Pruned {
                    sessions: pruned.len() as u64,
                }
            }
        }
    }
}

/// An account command as the log carries it: the account variants of
/// `task::Op` (which hands them over with `Op::account`), borrowed.
#[derive(Clone, Copy, Debug)]
pub enum AccountOp<'a> {
    UserCreate(&'a NewUser),
    /// Creates the first admin, only while the cluster has no users.
    BootstrapAdmin(&'a NewUser),
    UserUpdate(&'a UserUpdate),
    SessionCreate(&'a NewSession),
    SessionEnd {
        hash: &'a str,
    },
    TokenCreate(&'a NewToken),
    TokenRevoke {
        id: Uuid,
    },
    /// Drops the sessions that ended before `before` (the leader's clock).
    PruneSessions {
        before: Timestamp,
    },
}

/// The accounts every node holds in memory, shared by the applier (the
/// only writer, right after its MySQL COMMIT) and the api (every request's
/// credentials are checked here). `None` until the applier has read them
/// from MySQL at start-up, which it does once the node has caught up (a
/// restarted node that needs a snapshot copies a peer's rows first), and
/// again while a catch-up replaces the tables: the api serves from the
/// start, and a request with credentials waits for them
/// ([`AccountsCache::loaded`]).
#[derive(Clone)]
pub struct AccountsCache {
    inner: Arc<tokio::sync::watch::Sender<Option<Arc<Accounts>>>>,
    /// Bumped on every [`AccountsCache::set`]: what open WebSockets watch
    /// to learn that their credential may have ended.
    changes: Arc<tokio::sync::watch::Sender<u64>>,
}

impl Default for AccountsCache {
    fn default() -> Self {
        AccountsCache {
            inner: Arc::new(tokio::sync::watch::Sender::new(None)),
            changes: Arc::new(tokio::sync::watch::Sender::new(0)),
        }
    }
}

impl AccountsCache {
    pub fn get(&self) -> Option<Arc<Accounts>> {
        self.inner.borrow().clone()
    }

    pub fn set(&self, accounts: Option<Arc<Accounts>>) {
        self.inner.send_replace(accounts);
        self.changes.send_modify(|n| *n += 1);
    }

    /// The accounts, once loaded, waiting for them up to `within`.
    pub async fn loaded(&self, within: std::time::Duration) -> Option<Arc<Accounts>> {
        let mut seen = self.inner.subscribe();
        let loaded = match tokio::time::timeout(within, seen.wait_for(Option::is_some)).await {
            Ok(Ok(accounts)) => accounts.clone(),
            _ => None,
        };
        loaded
    }

    /// Wakes whenever the accounts were replaced (after each applied batch
    /// with an account command, and at start-up and catch-up).
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }
}

impl std::fmt::Debug for AccountsCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountsCache")
    }
}

#[cfg(test)]
mod cache_tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test]
    async fn a_request_waits_for_the_accounts_a_starting_node_loads() {
        let cache = AccountsCache::default();
        assert!(cache.get().is_none());
        // Not loaded within the wait: nothing (the api answers 503).
        assert!(cache.loaded(Duration::from_millis(50)).await.is_none());
        let applier = cache.clone();
        let load = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            applier.set(Some(Arc::new(Accounts::default())));
        });
        let started = std::time::Instant::now();
        let loaded = cache.loaded(Duration::from_secs(10)).await;
        assert!(
            loaded.is_some(),
            "the accounts, once the applier has loaded them"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        load.await.unwrap();
        // Loaded already: at once.
        assert!(cache.loaded(Duration::ZERO).await.is_some());
    }
}
