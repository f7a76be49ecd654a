//! Community, post and comment inputs that can only exist when valid, listing sorts, page
//! sizes and opaque keyset cursors.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize, de::DeserializeOwned};

use super::ParseError;

fn text_without_nul(text: &str) -> Result<(), ParseError> {
    if text.contains('\0') { Err(ParseError("must not contain NUL characters".into())) } else { Ok(()) }
}

fn bounded(text: &str, min: usize, max: usize, what: &str) -> Result<String, ParseError> {
    text_without_nul(text)?;
    let length = text.chars().count();
    if (min..=max).contains(&length) {
        Ok(text.to_owned())
    } else if min == 0 {
        Err(ParseError(format!("{what} must be at most {max} characters")))
    } else {
        Err(ParseError(format!("{what} must be {min} to {max} characters")))
    }
}

/// A community name: 3–21 of `[a-z0-9_]`, unique ignoring case.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityName(String);

impl CommunityName {
    /// Accepts a valid community name.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        let valid = (3..=21).contains(&text.len())
            && text.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if valid {
            Ok(Self(text.to_owned()))
        } else {
            Err(ParseError("a community name is 3 to 21 lowercase letters, digits or underscores".into()))
        }
    }

    /// The name a lookup addresses (names are unique ignoring case), or `None` when no
    /// community could have it.
    pub fn lookup(text: &str) -> Option<Self> {
        Self::parse(&text.to_ascii_lowercase()).ok()
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A community title: 1–100 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommunityTitle(String);

impl CommunityTitle {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Accepts a valid title.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        bounded(text.trim(), 1, 100, "a title").map(Self)
    }
}

/// A community description: up to 10,000 characters of Markdown.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Description(String);

impl Description {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Accepts a valid description.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        bounded(text, 0, 10_000, "a description").map(Self)
    }
}

/// A community's rules: up to 20, each 1–500 characters. Reports and removals cite them by index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rules(Vec<String>);

impl Rules {
    /// The rules, in order.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The rules, owned.
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }

    /// Accepts a valid rule list.
    pub fn parse(rules: &[String]) -> Result<Self, ParseError> {
        if rules.len() > 20 {
            return Err(ParseError("at most 20 rules".into()));
        }
        rules.iter().map(|rule| bounded(rule.trim(), 1, 500, "each rule")).collect::<Result<Vec<_>, _>>().map(Self)
    }
}

/// A moderation reason (bans, removals, reports): up to 1,000 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Reason(String);

impl Reason {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Accepts a reason (may be empty where a rule is cited instead).
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        bounded(text.trim(), 0, 1000, "a reason").map(Self)
    }
}

/// A post title: 1–300 characters, trimmed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostTitle(String);

impl PostTitle {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Accepts a valid title.
    pub fn parse(text: &str) -> Result<Self, ParseError> {
        bounded(text.trim(), 1, 300, "a title").map(Self)
    }
}

/// A post or comment body: Markdown, up to 40,000 characters (a comment needs at least one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Body(String);

impl Body {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Accepts a post body (may be empty).
    pub fn parse_post(text: &str) -> Result<Self, ParseError> {
        bounded(text, 0, 40_000, "a body").map(Self)
    }

    /// Accepts a comment body (not blank).
    pub fn parse_comment(text: &str) -> Result<Self, ParseError> {
        if text.trim().is_empty() {
            return Err(ParseError("a comment cannot be empty".into()));
        }
        bounded(text, 1, 40_000, "a comment").map(Self)
    }
}

/// The link of a link post: an absolute `http(s)` URL of at most 2,000 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkUrl(String);

impl LinkUrl {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The text, owned.
    pub fn into_string(self) -> String {
        self.0
    }

    /// Accepts a valid link.
    pub fn parse(sent: &str) -> Result<Self, ParseError> {
        let text = sent.trim();
        let lower = text.to_ascii_lowercase();
        let rest = lower.strip_prefix("https://").or_else(|| lower.strip_prefix("http://"));
        let host_ok = rest.is_some_and(|rest| {
            let host = rest.split(['/', '?', '#']).next().unwrap_or("");
            !host.is_empty() && !host.contains(char::is_whitespace)
        });
        if host_ok && sent.chars().count() <= 2000 && !text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            // The scheme is case-insensitive; store it in lower case, as URLs are normalized.
            let scheme = text.find("://").map_or(0, |at| at + 3);
            Ok(Self(format!("{}{}", &lower[..scheme], &text[scheme..])))
        } else {
            Err(ParseError("must be an http:// or https:// URL".into()))
        }
    }
}

/// A vote: -1 (down), 0 (clear) or 1 (up).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VoteValue(i16);

impl VoteValue {
    /// -1, 0 or 1.
    pub fn get(self) -> i16 {
        self.0
    }

    /// Accepts -1, 0 or 1.
    pub fn parse(value: i64) -> Result<Self, ParseError> {
        match value {
            -1..=1 => Ok(Self(value as i16)),
            _ => Err(ParseError("must be -1, 0 or 1".into())),
        }
    }
}

/// How a vote changes the up and down counts when `previous` (-1, 0, 1; 0 for none) becomes
/// `value`: the same rule for posts and comments.
pub fn vote_delta(previous: i16, value: i16) -> (i32, i32) {
    let up = i32::from(value == 1) - i32::from(previous == 1);
    let down = i32::from(value == -1) - i32::from(previous == -1);
    (up, down)
}

/// A page size within bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(i64);

impl Limit {
    /// A page size the code chose itself (at least 1).
    pub const fn fixed(size: i64) -> Self {
        Self(if size < 1 { 1 } else { size })
    }

    /// The page size.
    pub fn get(self) -> i64 {
        self.0
    }

    /// `value` or `default`, refusing anything outside `1..=max`.
    pub fn parse(value: Option<i64>, default: i64, max: i64) -> Result<Self, ParseError> {
        match value {
            None => Ok(Self(default)),
            Some(n) if (1..=max).contains(&n) => Ok(Self(n)),
            Some(_) => Err(ParseError(format!("must be between 1 and {max}"))),
        }
    }
}

/// Encodes a keyset position as an opaque string.
pub fn encode_cursor<T: Serialize>(position: &T) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(position).unwrap_or_default())
}

/// Decodes a cursor made by [`encode_cursor`]; anything else is refused.
pub fn decode_cursor<T: DeserializeOwned>(cursor: &str) -> Result<T, ParseError> {
    let invalid = || ParseError("is not a cursor from this listing".into());
    let bytes = URL_SAFE_NO_PAD.decode(cursor).map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

/// How a post listing is ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PostSort {
    /// Reddit's hot rank.
    #[default]
    Hot,
    /// Newest first.
    New,
    /// Highest score within the time window.
    Top,
    /// Many votes split close to even, within the time window.
    Controversial,
    /// Newest comment activity.
    Active,
}

/// The time window of `top` and `controversial`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeWindow {
    /// The last hour.
    Hour,
    /// The last day.
    Day,
    /// The last week.
    Week,
    /// The last 30 days.
    Month,
    /// The last 365 days.
    Year,
    /// All time.
    #[default]
    All,
}

impl TimeWindow {
    /// The window's length, `None` for all time.
    pub fn duration(self) -> Option<chrono::Duration> {
        match self {
            Self::Hour => Some(chrono::Duration::hours(1)),
            Self::Day => Some(chrono::Duration::days(1)),
            Self::Week => Some(chrono::Duration::weeks(1)),
            Self::Month => Some(chrono::Duration::days(30)),
            Self::Year => Some(chrono::Duration::days(365)),
            Self::All => None,
        }
    }
}

/// How comments are ordered at every level of a tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommentSort {
    /// Lower bound of the Wilson score interval.
    #[default]
    Best,
    /// Highest score.
    Top,
    /// Newest first.
    New,
    /// Oldest first.
    Old,
}

/// How communities are listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CommunitySort {
    /// Most members first.
    #[default]
    Popular,
    /// Newest first.
    New,
}

/// Which posts a listing draws from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Feed {
    /// Every community.
    #[default]
    All,
    /// The communities the caller joined (their home feed; needs sign-in).
    Subscribed,
}

/// How a user's posts or comments are listed on their profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProfileSort {
    /// Newest first.
    #[default]
    New,
    /// Highest score first.
    Top,
}

/// Where a profile listing continues: the last item's sort key and id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
pub enum AuthorCursor {
    /// `new`: creation time (microseconds) and id.
    New(i64, i64),
    /// `top`: score and id.
    Top(i32, i64),
}

/// Reddit's hot rank: sign(s)·log10(max(|s|,1)) + seconds since the epoch / 45000.
pub fn hot_rank(score: i64, created_at: chrono::DateTime<chrono::Utc>) -> f64 {
    let order = (score.unsigned_abs().max(1) as f64).log10();
    let sign = score.signum() as f64;
    sign * order + created_at.timestamp() as f64 / 45_000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn community_names_are_lowercase_words() {
        assert!(CommunityName::parse("rust_lang").is_ok());
        for bad in ["ab", "Rust", "rust-lang", "a".repeat(22).as_str(), "ünï", "' or 1=1"] {
            assert!(CommunityName::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn titles_bodies_and_links() {
        assert!(PostTitle::parse("   ").is_err());
        assert!(PostTitle::parse(&"t".repeat(300)).is_ok());
        assert!(PostTitle::parse(&"t".repeat(301)).is_err());
        assert!(Body::parse_post("").is_ok());
        assert!(Body::parse_comment(" \n ").is_err());
        assert!(Body::parse_post(&"b".repeat(40_001)).is_err());
        assert!(Body::parse_post("nul\0").is_err());
        assert!(LinkUrl::parse("https://example.com/a?b=c").is_ok());
        let shouted = LinkUrl::parse(" HTTPS://Example.org/Path ").map(|u| u.0);
        assert_eq!(shouted.ok().as_deref(), Some("https://Example.org/Path"), "the scheme is stored in lower case");
        for bad in ["javascript:alert(1)", "ftp://x.org", "https://", "http://a b.com", "example.com"] {
            assert!(LinkUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_and_votes_have_bounds() {
        assert_eq!(Limit::parse(None, 25, 100).unwrap(), Limit(25));
        assert!(Limit::parse(Some(0), 25, 100).is_err());
        assert!(Limit::parse(Some(101), 25, 100).is_err());
        assert!(Limit::parse(Some(-5), 25, 100).is_err());
        assert!(VoteValue::parse(2).is_err());
        assert_eq!(VoteValue::parse(-1).unwrap(), VoteValue(-1));
    }

    #[test]
    fn float_keys_survive_the_cursor_exactly() {
        // Hot ranks are ~3e7 with a fraction; an off-by-one-ULP key would skip a page.
        for i in 0..10_000u64 {
            let rank = 29_479_712.0 + (i as f64) / 45_000.0 + 1e-9 * (i as f64).sqrt();
            let back: (f64, i64) = decode_cursor(&encode_cursor(&(rank, 7i64))).unwrap();
            assert_eq!(back.0.to_bits(), rank.to_bits(), "{rank}");
        }
    }

    #[test]
    fn cursors_round_trip_and_refuse_forgeries() {
        let cursor = encode_cursor(&(1.5f64, 42i64));
        assert_eq!(decode_cursor::<(f64, i64)>(&cursor).unwrap(), (1.5, 42));
        assert!(decode_cursor::<(f64, i64)>("not a cursor!").is_err());
        assert!(decode_cursor::<(f64, i64)>(&cursor[..cursor.len() - 3]).is_err());
        assert!(decode_cursor::<(f64, i64)>(&encode_cursor(&"text")).is_err());
    }

    #[test]
    fn a_vote_moves_each_count_by_at_most_one() {
        assert_eq!(vote_delta(0, 1), (1, 0));
        assert_eq!(vote_delta(1, -1), (-1, 1), "a flip takes the up vote back and adds a down vote");
        assert_eq!(vote_delta(-1, 0), (0, -1));
        assert_eq!(vote_delta(1, 1), (0, 0));
    }

    #[test]
    fn hot_rank_follows_reddit() {
        let t = chrono::DateTime::from_timestamp(1_134_028_003, 0).unwrap();
        assert!((hot_rank(0, t) - 1_134_028_003.0 / 45_000.0).abs() < 1e-9);
        assert!((hot_rank(100, t) - hot_rank(0, t) - 2.0).abs() < 1e-9);
        assert!((hot_rank(-10, t) - hot_rank(0, t) + 1.0).abs() < 1e-9);
        let later = t + chrono::Duration::seconds(45_000);
        assert!((hot_rank(0, later) - hot_rank(10, t)).abs() < 1e-9, "12.5 hours is worth a factor of ten");
    }
}
