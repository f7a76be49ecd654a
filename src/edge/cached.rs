//! Answers from the response cache: the entry's ready bytes in the encoding the client
//! accepts (made once per entry), its ETag (a matching `If-None-Match` gets 304), and
//! `X-Cache: hit|miss` so operators and tests can see where an answer came from.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse};

use crate::service::cache::Served;

/// Whether the `Accept-Encoding` header accepts `coding` (a `q=0` refuses it).
pub fn accepts_encoding(req: &HttpRequest, coding: &str) -> bool {
    let accepted = req.headers().get(header::ACCEPT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    accepted.split(',').any(|part| {
        let mut pieces = part.split(';');
        let name = pieces.next().unwrap_or("").trim();
        let refused = pieces.any(|p| p.trim().replace(' ', "") == "q=0");
        name.eq_ignore_ascii_case(coding) && !refused
    })
}

fn etag_matches(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"))
}

/// The 200 (or 304) JSON answer for `served`.
pub fn json(req: &HttpRequest, served: &Served) -> HttpResponse {
    let personal = served.personal();
    let etag = personal.as_ref().map_or(served.entry.etag(), |p| p.etag.as_str());
    let unchanged = etag_matches(req, etag);
    let mut response = if unchanged { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    response
        .insert_header((header::ETAG, etag))
        .insert_header((header::VARY, "Accept-Encoding, Authorization"))
        .insert_header(("x-cache", if served.hit { "hit" } else { "miss" }));
    if unchanged {
        return response.finish();
    }
    response.content_type("application/json");
    if let Some(personal) = personal {
        // One reader's bytes: the compression middleware encodes them if asked.
        return response.body(personal.body);
    }
    let (encoding, body) = if accepts_encoding(req, "br") {
        (Some("br"), served.entry.brotli().clone())
    } else if accepts_encoding(req, "gzip") {
        (Some("gzip"), served.entry.gzip().clone())
    } else {
        (None, served.entry.body().clone())
    };
    if let Some(encoding) = encoding {
        // Setting Content-Encoding keeps the compression middleware from encoding again.
        response.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static(encoding)));
    }
    response.body(body)
}
