//! Validated input newtypes: a value of these types has passed its checks.

use std::fmt;

/// Why an input was refused; the message is safe to show to the user.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ValidationError {
    pub field: &'static str,
    pub message: String,
}

fn invalid(field: &'static str, message: impl Into<String>) -> ValidationError {
    ValidationError {
        field,
        message: message.into(),
    }
}

/// 3–32 characters of letters, digits, `.`, `_` or `-`, starting with a
/// letter or digit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// The longest username, in characters.
    pub const MAX_CHARS: usize = 32;

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        let len = s.chars().count();
        if !(3..=Self::MAX_CHARS).contains(&len) {
            return Err(invalid(
                "username",
                "Username must be 3 to 32 characters long.",
            ));
        }
        if !s
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(invalid(
                "username",
                "Username may contain only letters, digits, '.', '_' and '-'.",
            ));
        }
        if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
            return Err(invalid(
                "username",
                "Username must start with a letter or digit.",
            ));
        }
        Ok(Username(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The username a login claims, trimmed; `None` when blank. Longer than any
/// username can be (the registration limit) is refused before anything is
/// looked up, stored or logged.
pub fn claimed_username(raw: &str) -> Result<Option<String>, ValidationError> {
    let s = raw.trim();
    if s.chars().count() > Username::MAX_CHARS {
        return Err(invalid(
            "username",
            "That username is too long: usernames have at most 32 characters.",
        ));
    }
    Ok(Some(s.to_string()).filter(|s| !s.is_empty()))
}

/// A plausible e-mail address (one `@`, a dot in the domain, no spaces).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        let err = || invalid("email", "Enter a valid e-mail address.");
        if s.len() > 254 || s.chars().any(char::is_whitespace) {
            return Err(err());
        }
        let (local, domain) = s.split_once('@').ok_or_else(err)?;
        if local.is_empty() || domain.contains('@') || !domain.contains('.') {
            return Err(err());
        }
        if domain.starts_with('.') || domain.ends_with('.') {
            return Err(err());
        }
        Ok(Email(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A password of 8–128 characters that is not all digits
/// (NIST SP 800-63B: length over composition rules).
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// The longest password, in characters.
    pub const MAX_CHARS: usize = 128;

    /// Refuses a password longer than any password can be (checked before
    /// a login hashes what it was given).
    pub fn within_limit(raw: &str) -> Result<(), ValidationError> {
        if raw.chars().count() > Self::MAX_CHARS {
            return Err(invalid(
                "password",
                "Password must be at most 128 characters long.",
            ));
        }
        Ok(())
    }

    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        Self::within_limit(raw)?;
        let len = raw.chars().count();
        if len < 8 {
            return Err(invalid(
                "password",
                "Password must be at least 8 characters long.",
            ));
        }
        if raw.chars().all(|c| c.is_ascii_digit()) {
            return Err(invalid("password", "Password must not be only digits."));
        }
        Ok(Password(raw.to_string()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames() {
        assert_eq!(Username::parse(" alice ").unwrap().as_str(), "alice");
        assert!(Username::parse("al").is_err());
        assert!(Username::parse("_alice").is_err());
        assert!(Username::parse("a b c").is_err());
        assert!(Username::parse(&"a".repeat(33)).is_err());
        assert!(Username::parse("j.doe-2_x").is_ok());
    }

    #[test]
    fn emails() {
        assert!(Email::parse("a@example.com").is_ok());
        assert!(Email::parse("a@example").is_err());
        assert!(Email::parse("@example.com").is_err());
        assert!(Email::parse("a b@example.com").is_err());
        assert!(Email::parse("a@@example.com").is_err());
    }

    #[test]
    fn passwords() {
        assert!(Password::parse("short").is_err());
        assert!(Password::parse("12345678901").is_err());
        assert!(Password::parse("correct horse").is_ok());
        assert_eq!(
            format!("{:?}", Password::parse("secret-pass").unwrap()),
            "Password(***)"
        );
    }
}
