//! What a signed-in reader keeps and chooses not to see: marks on posts and comments, and
//! filtered keywords, matched against post titles as whole words, ignoring case.

use crate::domain::ParseError;

/// A reader's mark on a post or comment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A saved post.
    SavedPost,
    /// A saved comment.
    SavedComment,
    /// A hidden post.
    HiddenPost,
}

/// At most this many keywords per reader.
pub const MAX_KEYWORDS: usize = 50;

/// A reader's filtered keywords: at most [`MAX_KEYWORDS`], each 1–60 characters with at least
/// one letter or digit; kept as lowercase words joined by single spaces, without duplicates.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FilteredKeywords(Vec<String>);

impl FilteredKeywords {
    /// Accepts a list of keywords or phrases.
    pub fn parse(list: &[String]) -> Result<Self, ParseError> {
        if list.len() > MAX_KEYWORDS {
            return Err(ParseError(format!("at most {MAX_KEYWORDS} keywords")));
        }
        let mut keywords: Vec<String> = Vec::with_capacity(list.len());
        for keyword in list {
            if keyword.chars().count() > 60 || keyword.contains('\0') {
                return Err(ParseError("each keyword is at most 60 characters".into()));
            }
            let normal = words(keyword).collect::<Vec<_>>().join(" ");
            if normal.is_empty() {
                return Err(ParseError("each keyword needs a letter or a digit".into()));
            }
            if !keywords.contains(&normal) {
                keywords.push(normal);
            }
        }
        Ok(Self(keywords))
    }

    /// The keywords, normalized.
    pub fn as_slice(&self) -> &[String] {
        &self.0
    }

    /// The keywords, owned.
    pub fn into_vec(self) -> Vec<String> {
        self.0
    }
}

/// The lowercase words of `text`: runs of letters and digits.
fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric()).filter(|word| !word.is_empty()).map(str::to_lowercase)
}

/// Whether `title` holds one of `keywords` (normalized by [`FilteredKeywords`]) as whole
/// words: "rust" filters "Rust 2.0 is out" but not "Trusty"; "hot take" filters "My hot take".
pub fn title_is_filtered(title: &str, keywords: &[String]) -> bool {
    if keywords.is_empty() {
        return false;
    }
    let title: Vec<String> = words(title).collect();
    keywords.iter().any(|keyword| {
        let wanted: Vec<&str> = keyword.split(' ').collect();
        title.windows(wanted.len()).any(|window| window.iter().zip(&wanted).all(|(a, b)| a == b))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keywords(list: &[&str]) -> Vec<String> {
        let list: Vec<String> = list.iter().map(|k| (*k).to_owned()).collect();
        FilteredKeywords::parse(&list).map(FilteredKeywords::into_vec).unwrap_or_default()
    }

    #[test]
    fn keywords_match_whole_words_ignoring_case() {
        let filtered = keywords(&["Rust", "hot  TAKE"]);
        assert_eq!(filtered, vec!["rust", "hot take"]);
        assert!(title_is_filtered("RUST 2.0 is out", &filtered));
        assert!(title_is_filtered("why (rust)?", &filtered));
        assert!(!title_is_filtered("Trusty tools", &filtered));
        assert!(title_is_filtered("My hot take: tabs", &filtered));
        assert!(!title_is_filtered("hot takes", &filtered));
        assert!(!title_is_filtered("anything", &[]));
        assert!(title_is_filtered("Ünïcode wörds", &keywords(&["WÖRDS"])));
    }

    #[test]
    fn bad_keyword_lists_are_refused() {
        assert!(FilteredKeywords::parse(&["--".to_owned()]).is_err());
        assert!(FilteredKeywords::parse(&["x".repeat(61)]).is_err());
        assert!(FilteredKeywords::parse(&vec!["a".to_owned(); 51]).is_err());
        assert_eq!(keywords(&["a", "A"]), vec!["a"]);
    }
}
