//! The stylesheet and script, compiled into the binary, served under content-hashed names
//! (`/static/agora.<hash>.css`) with `Cache-Control: immutable`, and compressed once (gzip
//! and brotli) when first asked for rather than on every request.

use std::io::Write;
use std::sync::LazyLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, web};
use sha2::{Digest, Sha256};

use crate::error::AppError;
use crate::web::PageError;

/// One static file in its three encodings.
pub struct Asset {
    /// The fingerprinted URL path, e.g. `/static/agora.3f2a9c1d0b7e.css`.
    pub href: String,
    content_type: &'static str,
    identity: &'static [u8],
    gzip: Vec<u8>,
    brotli: Vec<u8>,
}

impl Asset {
    fn new(stem: &str, extension: &str, content_type: &'static str, bytes: &'static [u8]) -> Self {
        let digest = Sha256::digest(bytes);
        let hash: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
        Self {
            href: format!("/static/{stem}.{hash}.{extension}"),
            content_type,
            identity: bytes,
            gzip: gzip(bytes),
            brotli: brotli(bytes),
        }
    }
}

/// The stylesheet.
pub static CSS: LazyLock<Asset> =
    LazyLock::new(|| Asset::new("agora", "css", "text/css; charset=utf-8", include_bytes!("../../static/agora.css")));
/// The progressive-enhancement script.
pub static JS: LazyLock<Asset> = LazyLock::new(|| {
    Asset::new("agora", "js", "text/javascript; charset=utf-8", include_bytes!("../../static/agora.js"))
});

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(bytes);
    encoder.finish().unwrap_or_default()
}

fn brotli(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut writer = brotli::CompressorWriter::new(&mut out, 4096, 11, 22);
        let _ = writer.write_all(bytes);
    }
    out
}

/// `GET /static/{file}`: only the current fingerprinted names exist; anything else is a 404,
/// so a stale name never gets a wrong file cached for a year.
pub async fn serve(req: HttpRequest, file: web::Path<String>) -> Result<HttpResponse, PageError> {
    let path = format!("/static/{file}");
    let asset = [&*CSS, &*JS].into_iter().find(|asset| asset.href == path).ok_or_else(not_found)?;
    let accepts = |coding: &str| crate::edge::cached::accepts_encoding(&req, coding);
    let (encoding, body) = if accepts("br") && !asset.brotli.is_empty() {
        (Some("br"), asset.brotli.clone())
    } else if accepts("gzip") && !asset.gzip.is_empty() {
        (Some("gzip"), asset.gzip.clone())
    } else {
        (None, asset.identity.to_vec())
    };
    let mut response = HttpResponse::Ok();
    response
        .insert_header((header::CONTENT_TYPE, asset.content_type))
        .insert_header((header::CACHE_CONTROL, "public, max-age=31536000, immutable"));
    if let Some(encoding) = encoding {
        // Setting Content-Encoding keeps the compression middleware from encoding again.
        response.insert_header((header::CONTENT_ENCODING, HeaderValue::from_static(encoding)));
    }
    Ok(response.body(body))
}

fn not_found() -> PageError {
    AppError::not_found("file").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_carry_the_content_hash_and_encodings_round_trip() {
        assert!(CSS.href.starts_with("/static/agora.") && CSS.href.ends_with(".css"));
        assert_ne!(CSS.href, JS.href);
        let mut unzipped = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&CSS.gzip[..]), &mut unzipped)
            .unwrap_or_default();
        assert_eq!(unzipped.as_bytes(), CSS.identity);
        let mut unbrotli = Vec::new();
        std::io::Read::read_to_end(&mut brotli::Decompressor::new(&JS.brotli[..], 4096), &mut unbrotli)
            .unwrap_or_default();
        assert_eq!(unbrotli, JS.identity);
        assert!(CSS.brotli.len() < CSS.identity.len());
    }
}
