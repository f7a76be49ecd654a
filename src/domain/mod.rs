//! Domain types that carry the rules: ids as newtypes, names that can only exist when valid.
//! Nothing here knows about HTTP or SQL.

pub mod accounts;
pub mod content;
pub mod media;
pub mod reader;

use std::fmt;

pub use accounts::{Bio, EmailAddress, NotificationSettings, Password};
pub use content::{
    Body, CommentSort, CommunityName, CommunitySort, CommunityTitle, Description, Limit, LinkUrl, PostSort, PostTitle,
    Reason, Rules, TimeWindow, VoteValue,
};

/// A post id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct PostId(pub i64);

/// A comment id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CommentId(pub i64);

/// A user id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct UserId(pub i64);

/// A community id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CommunityId(pub i64);

/// A login session (one refresh-token family) id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct SessionId(pub i64);

/// Why a name does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ParseError(pub String);

/// A username: 3–20 of `[A-Za-z0-9_]`, unique ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Username(String);

impl Username {
    /// Accepts a valid username.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let valid_chars = text.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if (3..=20).contains(&text.len()) && valid_chars {
            Ok(Self(text.to_owned()))
        } else {
            Err(ParseError("a username is 3 to 20 letters, digits or underscores".into()))
        }
    }

    /// The username as given.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Username {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn usernames_follow_the_contract() {
        for good in ["bob", "Alice_99", "a_b", "abcdefghijklmnopqrst"] {
            assert!(Username::parse(good).is_ok(), "{good}");
        }
        for bad in ["", "ab", "abcdefghijklmnopqrstu", "bob!", "bø", "a b", "<script>"] {
            assert!(Username::parse(bad).is_err(), "{bad}");
        }
    }
}
