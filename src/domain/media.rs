//! Rules of uploaded images that need no I/O: which formats are accepted (decided by the
//! content's magic bytes, never a name or a declared type), which sizes are refused before
//! decoding, the thumbnail widths, and the names of stored files.

use serde::{Deserialize, Serialize};

/// The formats Agora accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum SourceFormat {
    /// PNG (and APNG, whose first frame is used).
    Png,
    /// JPEG.
    Jpeg,
    /// GIF, animated or not.
    Gif,
    /// WebP, lossy, lossless or animated.
    Webp,
}

impl SourceFormat {
    /// The format of a file that starts with `head` (its first 16 bytes or more), or `None`
    /// for anything else: SVG, HTML, scripts, other image formats.
    pub fn sniff(head: &[u8]) -> Option<Self> {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Some(Self::Png)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(Self::Jpeg)
        } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
            Some(Self::Gif)
        } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
            Some(Self::Webp)
        } else {
            None
        }
    }

    /// The format stored as `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Png, Self::Jpeg, Self::Gif, Self::Webp].into_iter().find(|f| f.as_str() == name)
    }

    /// The name stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Png => "png",
            Self::Jpeg => "jpeg",
            Self::Gif => "gif",
            Self::Webp => "webp",
        }
    }
}

/// The widths of the thumbnails the API names (`w320`, `w640`, `w1280`).
pub const THUMBNAIL_WIDTHS: [u32; 3] = [320, 640, 1280];

/// Why an image is refused from its declared size alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SizeRefusal {
    /// More pixels than allowed.
    TooManyPixels {
        /// Declared width × height.
        pixels: u64,
        /// The limit.
        max: u64,
    },
    /// A side longer than allowed.
    TooLong {
        /// The longer side.
        side: u32,
        /// The limit.
        max: u32,
    },
    /// A zero width or height.
    Empty,
}

impl std::fmt::Display for SizeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::TooManyPixels { pixels, max } => {
                write!(f, "the image declares {pixels} pixels; at most {max} are accepted")
            }
            Self::TooLong { side, max } => write!(f, "the image declares a side of {side} pixels; at most {max}"),
            Self::Empty => f.write_str("the image declares no pixels"),
        }
    }
}

/// Checks the dimensions an image declares in its header, before anything is decoded.
pub fn check_declared_size(width: u32, height: u32, max_pixels: u64, max_dimension: u32) -> Result<(), SizeRefusal> {
    if width == 0 || height == 0 {
        return Err(SizeRefusal::Empty);
    }
    let side = width.max(height);
    if side > max_dimension {
        return Err(SizeRefusal::TooLong { side, max: max_dimension });
    }
    let pixels = u64::from(width) * u64::from(height);
    if pixels > max_pixels {
        return Err(SizeRefusal::TooManyPixels { pixels, max: max_pixels });
    }
    Ok(())
}

/// The thumbnail widths stored for an image `width` wide: those narrower than it (a
/// thumbnail is never wider than its image; the image serves the rest).
pub fn thumbnail_widths(width: u32) -> Vec<u32> {
    THUMBNAIL_WIDTHS.into_iter().filter(|w| *w < width).collect()
}

/// The height of a `target_width` wide thumbnail of a `width` × `height` image (aspect
/// ratio kept, at least 1).
pub fn scaled_height(width: u32, height: u32, target_width: u32) -> u32 {
    let scaled = (u64::from(height) * u64::from(target_width) + u64::from(width) / 2) / u64::from(width.max(1));
    u32::try_from(scaled.max(1)).unwrap_or(u32::MAX)
}

/// The name of a stored file: the processed image's hash, and a thumbnail's width.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MediaKey {
    hash: String,
    width: Option<u32>,
}

impl MediaKey {
    /// The full-size image of `hash`.
    pub fn original(hash: &str) -> Self {
        Self { hash: hash.to_owned(), width: None }
    }

    /// The `width` wide thumbnail of `hash`.
    pub fn thumbnail(hash: &str, width: u32) -> Self {
        Self { hash: hash.to_owned(), width: Some(width) }
    }

    /// Parses a key from a URL path segment: 64 lowercase hex digits, an optional
    /// `-w320`/`-w640`/`-w1280`, and `.webp`. Nothing else, so no path can escape the store.
    pub fn parse(text: &str) -> Option<Self> {
        let stem = text.strip_suffix(".webp")?;
        let (hash, width) = match stem.split_once("-w") {
            Some((hash, width)) => {
                let width: u32 = width.parse().ok()?;
                if !THUMBNAIL_WIDTHS.contains(&width) || width.to_string().len() != stem.len() - hash.len() - 2 {
                    return None;
                }
                (hash, Some(width))
            }
            None => (stem, None),
        };
        let hex = hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        hex.then(|| Self { hash: hash.to_owned(), width })
    }

    /// The processed image's hash.
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The name in the store and in `/media/…`.
    pub fn name(&self) -> String {
        match self.width {
            Some(width) => format!("{}-w{width}.webp", self.hash),
            None => format!("{}.webp", self.hash),
        }
    }
}

/// The `urls` object of an upload: the full-size image and a URL for each thumbnail width
/// (the image itself where it is narrower than a width).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ImageUrls {
    /// The full-size image.
    pub original: String,
    /// 320 pixels wide (or the image, when narrower).
    pub w320: String,
    /// 640 pixels wide (or the image, when narrower).
    pub w640: String,
    /// 1280 pixels wide (or the image, when narrower).
    pub w1280: String,
}

impl ImageUrls {
    /// The URLs (paths under this server's `/media/`) of a stored image.
    pub fn of(hash: &str, stored_widths: &[u32]) -> Self {
        let url = |key: MediaKey| format!("/media/{}", key.name());
        let at = |width: u32| {
            if stored_widths.contains(&width) {
                url(MediaKey::thumbnail(hash, width))
            } else {
                url(MediaKey::original(hash))
            }
        };
        Self { original: url(MediaKey::original(hash)), w320: at(320), w640: at(640), w1280: at(1280) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_come_from_the_content() {
        assert_eq!(SourceFormat::sniff(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR"), Some(SourceFormat::Png));
        assert_eq!(SourceFormat::sniff(&[0xFF, 0xD8, 0xFF, 0xE1, 0, 0]), Some(SourceFormat::Jpeg));
        assert_eq!(SourceFormat::sniff(b"GIF89a\x01\0\x01\0"), Some(SourceFormat::Gif));
        assert_eq!(SourceFormat::sniff(b"RIFF\x10\0\0\0WEBPVP8 "), Some(SourceFormat::Webp));
        for refused in [
            &b"<svg xmlns=\"http://www.w3.org/2000/svg\">"[..],
            b"<!DOCTYPE html><html>",
            b"#!/bin/sh\nrm -rf /",
            b"RIFF\0\0\0\0WAVE",
            b"",
        ] {
            assert_eq!(SourceFormat::sniff(refused), None, "{:?}", String::from_utf8_lossy(refused));
        }
    }

    #[test]
    fn declared_sizes_over_the_limits_are_refused() {
        assert!(check_declared_size(4000, 3000, 40_000_000, 10_000).is_ok());
        assert!(matches!(
            check_declared_size(100_000, 100_000, 40_000_000, 200_000),
            Err(SizeRefusal::TooManyPixels { .. })
        ));
        assert!(matches!(check_declared_size(10_001, 10, 40_000_000, 10_000), Err(SizeRefusal::TooLong { .. })));
        assert_eq!(check_declared_size(0, 10, 40_000_000, 10_000), Err(SizeRefusal::Empty));
    }

    #[test]
    fn thumbnails_are_never_wider_than_the_image() {
        assert_eq!(thumbnail_widths(4000), [320, 640, 1280]);
        assert_eq!(thumbnail_widths(640), [320]);
        assert!(thumbnail_widths(200).is_empty());
        assert_eq!(scaled_height(4000, 3000, 320), 240);
        assert_eq!(scaled_height(1000, 1, 320), 1);
    }

    #[test]
    fn keys_are_hex_hashes_with_a_known_width_and_nothing_else() {
        let hash = "ab".repeat(32);
        assert_eq!(MediaKey::parse(&format!("{hash}.webp")), Some(MediaKey::original(&hash)));
        assert_eq!(MediaKey::parse(&format!("{hash}-w640.webp")), Some(MediaKey::thumbnail(&hash, 640)));
        for bad in [
            format!("{hash}-w100.webp"),
            format!("{hash}-w0640.webp"),
            format!("{hash}.png"),
            format!("../{hash}.webp"),
            format!("{}.webp", "AB".repeat(32)),
            format!("{}.webp", &hash[..63]),
            "..%2f..%2fetc%2fpasswd".to_owned(),
        ] {
            assert_eq!(MediaKey::parse(&bad), None, "{bad}");
        }
        let key = MediaKey::thumbnail(&hash, 1280);
        assert_eq!(MediaKey::parse(&key.name()), Some(key));
    }

    #[test]
    fn urls_point_narrow_widths_at_the_image() {
        let urls = ImageUrls::of("h", &[320]);
        assert_eq!(urls.w320, "/media/h-w320.webp");
        assert_eq!(urls.w640, "/media/h.webp");
        assert_eq!(urls.w1280, urls.original);
    }
}
