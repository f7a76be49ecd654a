//! The built-in summarizer: TextRank over sentences. Needs no network, so a summary is always
//! possible; it picks the sentences most similar to the rest of the thread.

/// One piece of the thread: the post (no comment id) or a comment.
#[derive(Debug, Clone)]
pub struct Passage {
    /// The comment's id; `None` for the post itself.
    pub comment_id: Option<i64>,
    /// Plain text.
    pub text: String,
}

/// The summary and the comments its sentences came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Extract {
    /// The chosen sentences, in thread order.
    pub summary: String,
    /// Comments that contributed a sentence, in thread order.
    pub comment_ids: Vec<i64>,
}

struct Sentence {
    passage: usize,
    text: String,
    words: Vec<String>,
}

fn split_sentences(text: &str) -> Vec<String> {
    let mut sentences = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        current.push(if c == '\n' { ' ' } else { c });
        if matches!(c, '.' | '!' | '?' | '\n') {
            let trimmed = current.trim();
            if trimmed.split_whitespace().count() >= 4 {
                sentences.push(trimmed.to_owned());
            }
            current.clear();
        }
    }
    let trimmed = current.trim();
    if trimmed.split_whitespace().count() >= 4 {
        sentences.push(trimmed.to_owned());
    }
    sentences
}

const STOP_WORDS: &[&str] = &[
    "the", "a", "an", "and", "or", "but", "if", "of", "to", "in", "on", "for", "with", "is", "are", "was", "were",
    "be", "it", "this", "that", "i", "you", "we", "they", "he", "she", "at", "as", "by", "from", "not", "so", "do",
    "have", "has", "my", "your", "our", "their", "just", "about", "what", "which", "can", "will", "would",
];

fn words(sentence: &str) -> Vec<String> {
    let mut words: Vec<String> = sentence
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() > 1)
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .collect();
    words.sort();
    words.dedup();
    words
}

/// TextRank similarity: shared words over the log of the sentences' lengths.
fn similarity(a: &[String], b: &[String]) -> f64 {
    if a.len() < 2 || b.len() < 2 {
        return 0.0;
    }
    let shared = a.iter().filter(|w| b.binary_search(w).is_ok()).count();
    shared as f64 / ((a.len() as f64).ln() + (b.len() as f64).ln())
}

/// Picks up to `max_sentences` central sentences of `passages`.
pub fn summarize(passages: &[Passage], max_sentences: usize) -> Extract {
    let sentences: Vec<Sentence> = passages
        .iter()
        .enumerate()
        .flat_map(|(passage, p)| {
            split_sentences(&p.text).into_iter().map(move |text| Sentence { passage, words: words(&text), text })
        })
        .take(400)
        .collect();
    if sentences.is_empty() {
        let text: String = passages.first().map(|p| p.text.chars().take(300).collect()).unwrap_or_default();
        return Extract { summary: text.trim().to_owned(), comment_ids: Vec::new() };
    }
    let n = sentences.len();
    let weights: Vec<Vec<f64>> = (0..n)
        .map(|i| {
            (0..n).map(|j| if i == j { 0.0 } else { similarity(&sentences[i].words, &sentences[j].words) }).collect()
        })
        .collect();
    let out_sums: Vec<f64> = weights.iter().map(|row| row.iter().sum()).collect();
    let damping = 0.85;
    let mut scores = vec![1.0; n];
    for _ in 0..30 {
        let next: Vec<f64> = (0..n)
            .map(|i| {
                let incoming: f64 =
                    (0..n).filter(|&j| out_sums[j] > 0.0).map(|j| weights[j][i] / out_sums[j] * scores[j]).sum();
                (1.0 - damping) + damping * incoming
            })
            .collect();
        scores = next;
    }
    let mut ranked: Vec<usize> = (0..n).collect();
    // Ties go to the earlier sentence: the post before its comments.
    ranked.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    // A summary keeps at most about a third of the thread, however short it is.
    let keep = max_sentences.min(n.div_ceil(3)).max(1);
    let mut chosen: Vec<usize> = ranked.into_iter().take(keep).collect();
    chosen.sort_unstable();
    let summary = chosen.iter().map(|&i| sentences[i].text.as_str()).collect::<Vec<_>>().join(" ");
    let mut comment_ids: Vec<i64> = Vec::new();
    for &i in &chosen {
        if let Some(id) = passages[sentences[i].passage].comment_id
            && !comment_ids.contains(&id)
        {
            comment_ids.push(id);
        }
    }
    Extract { summary, comment_ids }
}

#[cfg(test)]
mod tests {
    use super::{Passage, summarize};

    #[test]
    fn the_central_sentences_win_and_name_their_comments() {
        let passages = vec![
            Passage {
                comment_id: None,
                text: "Should the city build a new bike lane on Main Street next year?".into(),
            },
            Passage {
                comment_id: Some(11),
                text: "A bike lane on Main Street would make cycling to work much safer. My cat likes boxes.".into(),
            },
            Passage { comment_id: Some(12), text: "The bike lane would take parking from Main Street shops.".into() },
            Passage { comment_id: Some(13), text: "Pineapple belongs on pizza, fight me about it.".into() },
        ];
        let extract = summarize(&passages, 2);
        assert!(extract.summary.contains("bike lane"), "{}", extract.summary);
        assert!(!extract.summary.contains("Pineapple"), "{}", extract.summary);
        assert!(!extract.comment_ids.contains(&13));
        assert!(!extract.comment_ids.is_empty());
    }

    #[test]
    fn a_thread_without_full_sentences_still_gets_a_summary() {
        let passages = vec![Passage { comment_id: None, text: "Hi".into() }];
        assert_eq!(summarize(&passages, 3).summary, "Hi");
        assert_eq!(summarize(&[], 3).summary, "");
    }
}
