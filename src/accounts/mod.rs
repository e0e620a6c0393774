//! Accounts: users, their roles, sessions and personal tokens, as
//! replicated state.
//!
//! Like the board, this is a pure state machine: the api hashes passwords
//! (Argon2id) and draws secrets before proposing, so a command carries only
//! hashes, and every node applying the same commands in the same order holds
//! the same accounts. Users are never deleted (history names them). Every
//! operation is idempotent when re-applied to a state that already includes
//! it (a create of an existing id is refused without changing anything, the
//! other operations set absolute values, and a password change ends the
//! sessions *created before its log index*): a node that copied the account
//! tables from a peer during catch-up, at an applied index beyond its
//! snapshot, re-applies the entries in between without drifting.
//!
//! [`Accounts`] is held whole in memory by every node ([`AccountsCache`]),
//! so checking a request's credentials needs no MySQL round trip.

pub mod access;
pub mod proxy;
mod state;
#[cfg(test)]
mod tests;
pub mod validate;

pub use access::{Access, Principal, Via};
pub use state::{
    AccountChanges, AccountOp, AccountOutcome, AccountRejection, Accounts, AccountsCache,
    NewSession, NewToken, NewUser, Session, Token, User, UserUpdate, UserView,
};

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What a user may do, board-wide.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Viewer,
    Member,
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Member, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Member => "member",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = crate::invalid::UnknownName;
    fn from_str(s: &str) -> Result<Role, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| crate::invalid::UnknownName(s.to_string()))
    }
}

/// Who did something: a user, or the cluster itself. Every command and
/// event carries one; commands and events written before accounts existed
/// read as `system`.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Actor {
    pub id: String,
    pub name: String,
}

impl Actor {
    pub fn system() -> Actor {
        Actor {
            id: "system".into(),
            name: "system".into(),
        }
    }

    /// Whoever reached a node running with `auth = "off"`.
    pub fn anonymous() -> Actor {
        Actor {
            id: "anonymous".into(),
            name: "anonymous".into(),
        }
    }

    pub fn is_system(&self) -> bool {
        self.id == "system"
    }
}

impl Default for Actor {
    fn default() -> Actor {
        Actor::system()
    }
}

/// A fresh secret: 32 random bytes from the OS, hex-encoded.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the OS random source is available");
    hex(&bytes)
}

/// What is stored of a secret: its SHA-256, hex-encoded. Secrets are 256
/// random bits, so a plain hash suffices (no salt, no stretching): the
/// stored value cannot be turned back into a usable secret.
pub fn secret_hash(secret: &str) -> String {
    hex(&Sha256::digest(secret.as_bytes()))
}

/// The CSRF token of a session: derived from the session's secret, so any
/// node computes the same one from the cookie, and a page that cannot read
/// the cookie (another origin) cannot compute it.
pub fn csrf_token(session_secret: &str) -> String {
    hex(&Sha256::digest(
        format!("taskraft-csrf:{session_secret}").as_bytes(),
    ))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Argon2id with the crate's defaults (19 MiB, 2 passes): the hash the
/// node taking a request computes before proposing.
pub fn hash_password(password: &str) -> String {
    use argon2::password_hash::{PasswordHasher, SaltString};
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).expect("the OS random source is available");
    let salt = SaltString::encode_b64(&salt).expect("16 bytes is a valid salt");
    argon2::Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .expect("Argon2 hashes any password")
        .to_string()
}

/// Checks a password against a stored hash; a malformed hash matches
/// nothing.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordHash, PasswordVerifier};
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash to verify against when the user does not exist, so that a
/// login for an unknown name takes as long as one with a wrong password.
pub fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| hash_password("taskraft-no-such-user"))
}
