//! Markdown rendered to HTML on the server and sanitized, so stored `body_html` is safe to
//! embed in any page.

use pulldown_cmark::{Options, Parser, html};

/// Renders Markdown (CommonMark with tables, strikethrough and task lists) and removes
/// everything unsafe: scripts, event handlers, `javascript:` links, styles, iframes.
pub fn render(markdown: &str) -> String {
    let options = Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_TASKLISTS;
    let mut unsafe_html = String::with_capacity(markdown.len() * 3 / 2);
    html::push_html(&mut unsafe_html, Parser::new_ext(markdown, options));
    ammonia::Builder::default()
        .url_schemes(["http", "https", "mailto"].into_iter().collect())
        .link_rel(Some("nofollow noopener noreferrer ugc"))
        .clean(&unsafe_html)
        .to_string()
}

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::render;

    #[test]
    fn markdown_becomes_html() {
        assert_eq!(render("Some *text*"), "<p>Some <em>text</em></p>\n");
        assert!(render("[site](https://example.com)").contains(r#"rel="nofollow noopener noreferrer ugc""#));
    }

    #[test]
    fn hostile_markup_is_neutralized() {
        for hostile in [
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(1)>",
            "[click](javascript:alert(1))",
            "<a href=\"javascript:alert(1)\">x</a>",
            "<iframe src=\"https://evil.example\"></iframe>",
            "<div style=\"position:fixed\" onclick=\"x()\">",
            "<svg onload=alert(1)>",
        ] {
            let html = render(hostile).to_lowercase();
            for forbidden in ["<script", "onerror", "javascript:", "<iframe", "onclick", "style=", "onload"] {
                assert!(!html.contains(forbidden), "{hostile} rendered as {html}");
            }
        }
    }
}
