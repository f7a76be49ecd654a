//! Account inputs that can only exist when valid.

use serde::{Deserialize, Serialize};

use super::ParseError;

/// An email address: 3–254 characters, one `@` with text on both sides, a dot in the domain,
/// no spaces or control characters. Unique ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmailAddress(String);

impl EmailAddress {
    /// Accepts a plausible email address (delivery is the real test).
    pub fn parse(sent: &str) -> Result<Self, ParseError> {
        let text = sent.trim();
        let invalid = || ParseError("must be an email address such as name@example.com".into());
        if !(3..=254).contains(&text.chars().count())
            || sent.chars().count() > 254
            || text.chars().any(|c| c.is_whitespace() || c.is_control())
        {
            return Err(invalid());
        }
        let (local, domain) = text.rsplit_once('@').ok_or_else(invalid)?;
        let domain_ok = domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.');
        if local.is_empty() || local.contains('@') || !domain_ok {
            return Err(invalid());
        }
        Ok(Self(text.to_owned()))
    }

    /// The address as given (trimmed).
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 8–128 characters.
#[derive(Clone, PartialEq, Eq)]
pub struct Password(String);

impl Password {
    /// Accepts a password of acceptable length.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let length = text.chars().count();
        if (8..=128).contains(&length) && !text.contains('\0') {
            Ok(Self(text.to_owned()))
        } else {
            Err(ParseError("must be 8 to 128 characters".into()))
        }
    }

    /// The password itself, for hashing.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Password {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Password(****)")
    }
}

/// Which emails a user wants. Unknown keys are refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields, default)]
pub struct NotificationSettings {
    /// Email me when someone replies to my post or comment.
    pub email_on_reply: bool,
    /// Email me when someone mentions `u/me`.
    pub email_on_mention: bool,
    /// Email me when someone sends me a private message.
    pub email_on_message: bool,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self { email_on_reply: true, email_on_mention: true, email_on_message: true }
    }
}

/// A profile bio: up to 10,000 characters of Markdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bio(String);

impl Bio {
    /// Accepts a bio of acceptable length.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        if text.chars().count() <= 10_000 && !text.contains('\0') {
            Ok(Self(text.to_owned()))
        } else {
            Err(ParseError("must be at most 10000 characters".into()))
        }
    }

    /// The bio text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_addresses() {
        for good in ["a@b.co", "first.last+tag@example.com", " spaced@example.org "] {
            assert!(EmailAddress::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "plain", "@example.com", "a@", "a@b", "a b@example.com", "a@.com", "a@example.", "a@b@c.com"] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_8_to_128_characters() {
        assert!(Password::parse("1234567").is_err());
        assert!(Password::parse("12345678").is_ok());
        assert!(Password::parse(&"é".repeat(128)).is_ok(), "characters, not bytes");
        assert!(Password::parse(&"x".repeat(129)).is_err());
        assert!(Password::parse("abc\0defgh").is_err());
        assert_eq!(format!("{:?}", Password::parse("secret123").unwrap()), "Password(****)");
    }
}
