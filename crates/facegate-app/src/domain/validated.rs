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
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let s = raw.trim();
        let len = s.chars().count();
        if !(3..=32).contains(&len) {
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
    pub fn parse(raw: &str) -> Result<Self, ValidationError> {
        let len = raw.chars().count();
        if len < 8 {
            return Err(invalid(
                "password",
                "Password must be at least 8 characters long.",
            ));
        }
        if len > 128 {
            return Err(invalid(
                "password",
                "Password must be at most 128 characters long.",
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
