//! Why a value from outside is refused, shared by the domain's modules
//! (tasks and accounts): a field that breaks a shape rule, or a name that is
//! none of an enum's values. The api answers both with 400.

use std::fmt;

/// A field that breaks a shape rule, and the rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invalid {
    pub field: String,
    pub message: String,
}

impl Invalid {
    pub fn new(field: &str, message: impl Into<String>) -> Invalid {
        Invalid {
            field: field.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Invalid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// A name that is none of an enum's values (a status, a priority, an
/// event kind, a role).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown name {0:?}")]
pub struct UnknownName(pub String);
