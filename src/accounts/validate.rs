//! Shape rules for account input, checked by the api before proposing.

use crate::invalid::Invalid;

pub const USERNAME_MAX: usize = 64;
pub const DISPLAY_NAME_MAX: usize = 100;
pub const PASSWORD_MIN: usize = 8;
/// Argon2 takes any length; this bounds the work a request can ask for.
pub const PASSWORD_MAX: usize = 1024;
pub const TOKEN_NAME_MAX: usize = 100;

fn invalid(field: &str, message: impl Into<String>) -> Invalid {
    Invalid {
        field: field.to_string(),
        message: message.into(),
    }
}

/// A user name: 1–64 of `a-z 0-9 . _ -`, compared in lower case; returns
/// it lower-cased.
pub fn username(name: &str) -> Result<String, Invalid> {
    let name = name.trim().to_ascii_lowercase();
    if name.is_empty() || name.len() > USERNAME_MAX {
        return Err(invalid(
            "username",
            format!("must be 1 to {USERNAME_MAX} characters"),
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
    {
        return Err(invalid(
            "username",
            "may hold only letters a-z, digits, `.`, `_` and `-`",
        ));
    }
    Ok(name)
}

pub fn password(password: &str) -> Result<(), Invalid> {
    let n = password.chars().count();
    if n < PASSWORD_MIN || password.len() > PASSWORD_MAX {
        return Err(invalid(
            "password",
            format!("must be {PASSWORD_MIN} to {PASSWORD_MAX} bytes"),
        ));
    }
    Ok(())
}

/// A name people read (a display name, a token's name): trimmed, 1 to
/// `max` characters, no control characters.
pub fn label(field: &str, text: &str, max: usize) -> Result<String, Invalid> {
    let text = text.trim();
    let n = text.chars().count();
    if n == 0 || n > max {
        return Err(invalid(field, format!("must be 1 to {max} characters")));
    }
    if text.chars().any(char::is_control) {
        return Err(invalid(field, "must not hold control characters"));
    }
    Ok(text.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_are_short_plain_and_lower_case() {
        assert_eq!(username(" Alice.B-1_ ").unwrap(), "alice.b-1_");
        for bad in ["", "a b", "ali😀", "x".repeat(65).as_str(), "a/b", "a\u{0}"] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
        assert!(password("short").is_err());
        assert!(password(&"p".repeat(1025)).is_err());
        assert!(password("long enough").is_ok());
        assert_eq!(label("n", " 😀 x ", 5).unwrap(), "😀 x");
        assert!(label("n", "a\nb", 5).is_err());
        assert!(label("n", "   ", 5).is_err());
        assert!(label("n", "123456", 5).is_err());
    }
}
