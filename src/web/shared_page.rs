//! Anonymous pages rendered once and shared: the HTML is kept beside the cached data it was
//! rendered from (see `service::cache::Entry::derived`), with the form token left as a
//! placeholder that each answer fills with the browser's own token.

use std::sync::LazyLock;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use bytes::Bytes;

use crate::error::AppError;
use crate::web::view::Layout;

/// How long a shared page is reused while its data stays the same (its relative times drift).
pub const MAX_AGE: Duration = Duration::from_secs(30);

/// Stands for the CSRF token in shared HTML: random per process, so no content can contain it.
static TOKEN_PLACEHOLDER: LazyLock<String> = LazyLock::new(|| {
    let bytes: [u8; 16] = crate::security::random_bytes::<16>().unwrap_or([7; 16]);
    format!("csrf-{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>())
});

/// The frame of a shared anonymous page.
pub fn anonymous_layout() -> Layout {
    Layout::new(None, TOKEN_PLACEHOLDER.clone())
}

/// A rendered anonymous page, split where the form token goes.
pub struct SharedPage {
    pieces: Vec<Bytes>,
    etag: String,
}

impl SharedPage {
    /// Renders `template` (made with [`anonymous_layout`]).
    pub fn render(template: &impl Template) -> Result<Self, AppError> {
        let html = template.render().map_err(AppError::internal)?;
        let etag = crate::service::cache::etag_of(html.as_bytes());
        let pieces =
            html.split(TOKEN_PLACEHOLDER.as_str()).map(|piece| Bytes::copy_from_slice(piece.as_bytes())).collect();
        Ok(Self { pieces, etag })
    }

    /// The page for a browser whose form token is `csrf` (200, or 304 for its ETag).
    pub fn respond(&self, req: &HttpRequest, csrf: &str) -> HttpResponse {
        // The token is part of the page: it is part of the ETag too.
        let etag = format!(
            "{}-{}\"",
            self.etag.trim_end_matches('"'),
            &crate::service::cache::etag_of(csrf.as_bytes())[3..11]
        );
        let html = if self.pieces.len() == 1 {
            self.pieces[0].clone()
        } else {
            let size = self.pieces.iter().map(Bytes::len).sum::<usize>() + csrf.len() * self.pieces.len();
            let mut html = Vec::with_capacity(size);
            for (n, piece) in self.pieces.iter().enumerate() {
                if n > 0 {
                    html.extend_from_slice(csrf.as_bytes());
                }
                html.extend_from_slice(piece);
            }
            Bytes::from(html)
        };
        crate::web::html_response(req, StatusCode::OK, etag, html)
    }
}
