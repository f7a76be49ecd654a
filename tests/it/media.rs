//! Image uploads end to end against the real database and job queue: what is stored (WebP,
//! upright, stripped of every piece of metadata, thumbnails never upscaled), what is refused
//! and when (before decoding), dedup and deletion, posts and avatars, orphans, and `/media`.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::accounts::problem_code;
use crate::harness::{TestApp, eventually, spawn_app, spawn_app_with};

#[path = "../../examples/support/png.rs"]
mod png;

/// Images the tests make themselves.
pub mod images {
    use image::{ImageEncoder, Rgb, RgbImage, Rgba, RgbaImage};

    fn gradient(width: u32, height: u32) -> RgbImage {
        RgbImage::from_fn(width, height, |x, y| Rgb([(x * 255 / width) as u8, (y * 255 / height) as u8, 128]))
    }

    /// A JPEG `width` × `height` as stored, with an EXIF block that says "rotate 90° clockwise
    /// to show" (orientation 6) and carries a GPS position.
    pub fn jpeg_rotated_with_gps(width: u32, height: u32) -> Vec<u8> {
        let mut jpeg = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut jpeg, 90)
            .encode_image(&gradient(width, height))
            .unwrap();
        let mut tiff: Vec<u8> = Vec::new();
        tiff.extend_from_slice(b"II\x2a\x00");
        tiff.extend_from_slice(&8u32.to_le_bytes());
        // IFD0: orientation 6, and where the GPS IFD is (8 + 2 + 2 * 12 + 4 = 38).
        tiff.extend_from_slice(&2u16.to_le_bytes());
        tiff.extend_from_slice(&[0x12, 0x01, 3, 0, 1, 0, 0, 0, 6, 0, 0, 0]);
        tiff.extend_from_slice(&[0x25, 0x88, 4, 0, 1, 0, 0, 0]);
        tiff.extend_from_slice(&38u32.to_le_bytes());
        tiff.extend_from_slice(&0u32.to_le_bytes());
        // The GPS IFD: latitude ref N, latitude (three rationals at 38 + 2 + 24 + 4 = 68).
        tiff.extend_from_slice(&2u16.to_le_bytes());
        tiff.extend_from_slice(&[0x01, 0x00, 2, 0, 2, 0, 0, 0, b'N', 0, 0, 0]);
        tiff.extend_from_slice(&[0x02, 0x00, 5, 0, 3, 0, 0, 0]);
        tiff.extend_from_slice(&68u32.to_le_bytes());
        tiff.extend_from_slice(&0u32.to_le_bytes());
        for (numerator, denominator) in [(52u32, 1u32), (31, 1), (1234, 100)] {
            tiff.extend_from_slice(&numerator.to_le_bytes());
            tiff.extend_from_slice(&denominator.to_le_bytes());
        }
        let mut app1 = b"Exif\0\0".to_vec();
        app1.extend_from_slice(&tiff);
        let length = u16::try_from(app1.len() + 2).unwrap();
        let mut out = jpeg[..2].to_vec();
        out.extend_from_slice(&[0xFF, 0xE1]);
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&app1);
        out.extend_from_slice(&jpeg[2..]);
        out
    }

    /// A PNG with an alpha channel.
    pub fn png(width: u32, height: u32) -> Vec<u8> {
        let image = RgbaImage::from_fn(width, height, |x, y| Rgba([(x % 256) as u8, (y % 256) as u8, 200, 180]));
        let mut out = Vec::new();
        image::codecs::png::PngEncoder::new(&mut out)
            .write_image(image.as_raw(), width, height, image::ExtendedColorType::Rgba8)
            .unwrap();
        out
    }

    /// An animated GIF of `frames` frames.
    pub fn animated_gif(width: u32, height: u32, frames: u32) -> Vec<u8> {
        let mut out = Vec::new();
        {
            let mut encoder = image::codecs::gif::GifEncoder::new(&mut out);
            encoder.set_repeat(image::codecs::gif::Repeat::Infinite).unwrap();
            for n in 0..frames {
                let buffer = RgbaImage::from_fn(width, height, |x, _| {
                    if (x + n * 10) % 40 < 20 { Rgba([255, 0, 0, 255]) } else { Rgba([0, 0, 255, 255]) }
                });
                let delay = image::Delay::from_numer_denom_ms(100, 1);
                encoder.encode_frame(image::Frame::from_parts(buffer, 0, 0, delay)).unwrap();
            }
        }
        out
    }

    /// A lossless WebP.
    pub fn webp(width: u32, height: u32) -> Vec<u8> {
        let image = RgbaImage::from_fn(width, height, |x, y| Rgba([(x % 256) as u8, 90, (y % 256) as u8, 255]));
        let mut out = Vec::new();
        image::codecs::webp::WebPEncoder::new_lossless(&mut out)
            .write_image(image.as_raw(), width, height, image::ExtendedColorType::Rgba8)
            .unwrap();
        out
    }

    pub use super::png::png_declaring;

    /// The RIFF chunks of a WebP file, and its VP8X flags byte (0 without VP8X).
    pub fn webp_chunks(bytes: &[u8]) -> (Vec<String>, u8) {
        assert_eq!(&bytes[..4], b"RIFF");
        assert_eq!(&bytes[8..12], b"WEBP");
        let mut chunks = Vec::new();
        let mut flags = 0;
        let mut at = 12;
        while at + 8 <= bytes.len() {
            let kind = String::from_utf8_lossy(&bytes[at..at + 4]).into_owned();
            let size = u32::from_le_bytes(bytes[at + 4..at + 8].try_into().unwrap()) as usize;
            if kind == "VP8X" {
                flags = bytes[at + 8];
            }
            chunks.push(kind);
            at += 8 + size + (size & 1);
        }
        (chunks, flags)
    }
}

use images::webp_chunks;

impl TestApp {
    /// `POST /api/v1/uploads` with one `file` part.
    pub async fn upload(&self, token: &str, name: &str, mime: &str, bytes: Vec<u8>) -> reqwest::Response {
        let part = reqwest::multipart::Part::bytes(bytes).file_name(name.to_owned()).mime_str(mime).unwrap();
        let form = reqwest::multipart::Form::new().part("file", part);
        self.client
            .post(format!("{}/api/v1/uploads", self.base))
            .bearer_auth(token)
            .multipart(form)
            .send()
            .await
            .unwrap()
    }

    /// Uploads `bytes` and waits until they are processed; the upload.
    pub async fn uploaded(&self, token: &str, bytes: Vec<u8>) -> Value {
        let response = self.upload(token, "picture.png", "image/png", bytes).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED, "{}", response.text().await.unwrap_or_default());
        let accepted: Value = response.json().await.unwrap();
        assert_eq!(accepted["status"], "processing");
        self.processed(accepted["id"].as_i64().unwrap()).await
    }

    /// Waits until upload `id` is ready or failed.
    pub async fn processed(&self, id: i64) -> Value {
        eventually(Duration::from_secs(60), "the upload to be processed", || async move {
            let upload: Value = self.get(&format!("/api/v1/uploads/{id}")).await.json().await.ok()?;
            (upload["status"] != "processing").then_some(upload)
        })
        .await
    }

    /// The bytes at a `/media/…` URL, checking the headers every image is served with.
    pub async fn media(&self, url: &str) -> Vec<u8> {
        let response = self.get(url).await;
        assert_eq!(response.status(), StatusCode::OK, "{url}");
        let headers = response.headers().clone();
        assert_eq!(headers["content-type"], "image/webp");
        assert_eq!(headers["cache-control"], "public, max-age=31536000, immutable");
        assert_eq!(headers["x-content-type-options"], "nosniff");
        assert!(headers.contains_key("etag"));
        response.bytes().await.unwrap().to_vec()
    }
}

fn dimensions(webp: &[u8]) -> (u32, u32) {
    image::ImageReader::with_format(std::io::Cursor::new(webp), image::ImageFormat::WebP).into_dimensions().unwrap()
}

#[tokio::test]
async fn a_jpeg_is_turned_upright_stripped_of_its_metadata_and_thumbnailed() {
    let app = spawn_app().await;
    let token = app.token_for("ann").await;
    let jpeg = images::jpeg_rotated_with_gps(1600, 800);
    assert!(jpeg.windows(4).any(|w| w == b"Exif"));
    let upload = app.uploaded(&token, jpeg).await;
    assert_eq!(upload["status"], "ready", "{upload}");
    // Orientation 6: stored 1600 wide, shown 800 wide and 1600 high.
    assert_eq!((upload["width"].as_i64(), upload["height"].as_i64()), (Some(800), Some(1600)));
    let urls = &upload["urls"];
    let original = app.media(urls["original"].as_str().unwrap()).await;
    assert_eq!(dimensions(&original), (800, 1600));
    let (chunks, flags) = webp_chunks(&original);
    assert!(chunks.iter().all(|c| ["VP8 ", "VP8L", "VP8X", "ALPH"].contains(&c.as_str())), "{chunks:?}");
    assert_eq!(flags & (0x20 | 0x08 | 0x04), 0, "no ICC, EXIF or XMP flag");
    assert!(!original.windows(4).any(|w| w == b"Exif"), "the EXIF block (and its GPS position) is gone");
    assert_eq!(dimensions(&app.media(urls["w320"].as_str().unwrap()).await), (320, 640));
    assert_eq!(dimensions(&app.media(urls["w640"].as_str().unwrap()).await), (640, 1280));
    assert_eq!(urls["w1280"], urls["original"], "an 800 wide image is not upscaled to 1280");
    // Nothing of the upload is kept on disk.
    let incoming = app.state_dir.path().join("media-incoming");
    assert_eq!(std::fs::read_dir(&incoming).map(|d| d.count()).unwrap_or(0), 0);
    // The ETag makes revalidation free.
    let etag = app.get(urls["w320"].as_str().unwrap()).await.headers()["etag"].to_str().unwrap().to_owned();
    let again = app.client.get(format!("{}{}", app.base, urls["w320"].as_str().unwrap())).header("if-none-match", etag);
    assert_eq!(again.send().await.unwrap().status(), StatusCode::NOT_MODIFIED);
    let scrape = app.scrape().await;
    assert!(crate::harness::metric(&scrape, "agora_media_uploads_total{outcome=\"ready\"}") >= 1.0);
    assert!(crate::harness::metric(&scrape, "agora_media_objects") >= 1.0, "{scrape}");
    assert!(crate::harness::metric(&scrape, "agora_media_served_bytes_total") > 0.0);
}

#[tokio::test]
async fn png_webp_and_animated_gif_are_stored_as_webp_and_animations_stay_animated() {
    let app = spawn_app().await;
    let token = app.token_for("ann").await;
    let png = app.uploaded(&token, images::png(200, 100)).await;
    assert_eq!(png["status"], "ready", "{png}");
    let urls = &png["urls"];
    assert!(urls["w320"] == urls["original"] && urls["w1280"] == urls["original"], "no thumbnail is wider than 200");
    let stored = app.media(urls["original"].as_str().unwrap()).await;
    assert_eq!(dimensions(&stored), (200, 100));
    assert!(webp_chunks(&stored).0.contains(&"ALPH".to_owned()), "the alpha channel is kept");

    let webp = app.uploaded(&token, images::webp(700, 350)).await;
    assert_eq!((webp["status"].as_str(), webp["width"].as_i64()), (Some("ready"), Some(700)));
    assert_eq!(dimensions(&app.media(webp["urls"]["w640"].as_str().unwrap()).await), (640, 320));

    let gif = app.uploaded(&token, images::animated_gif(400, 200, 3)).await;
    assert_eq!(gif["status"], "ready", "{gif}");
    assert_eq!(gif["animated"], true);
    let animation = app.media(gif["urls"]["original"].as_str().unwrap()).await;
    let (chunks, flags) = webp_chunks(&animation);
    assert_eq!(chunks.iter().filter(|c| *c == "ANMF").count(), 3, "{chunks:?}");
    assert_eq!(flags & 0x02, 0x02, "the animation flag");
    assert_eq!(flags & (0x20 | 0x08 | 0x04), 0);
    let thumbnail = app.media(gif["urls"]["w320"].as_str().unwrap()).await;
    assert!(!webp_chunks(&thumbnail).0.contains(&"ANMF".to_owned()), "thumbnails are the first frame, still");
    assert_eq!(dimensions(&thumbnail), (320, 160));
}

#[tokio::test]
async fn bombs_impostors_and_broken_files_are_refused_with_reasons() {
    let app = spawn_app_with(|config| config.media.max_upload_bytes = 2 * 1024 * 1024).await;
    let token = app.token_for("ann").await;
    let rss = || {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .unwrap()
            .trim()
            .trim_end_matches(" kB")
            .parse::<u64>()
            .unwrap()
    };
    let before = rss();
    let bomb = app.upload(&token, "bomb.png", "image/png", images::png_declaring(100_000, 100_000)).await;
    assert_eq!(problem_code(bomb).await, (422, "image_too_large".to_owned()));
    let grown = rss().saturating_sub(before);
    assert!(grown < 50 * 1024, "refused from the header alone: RSS grew {grown} kB (40 GB if it had decoded)");
    let long = app.upload(&token, "long.png", "image/png", images::png_declaring(20_000, 10)).await;
    assert_eq!(problem_code(long).await, (422, "image_too_large".to_owned()));

    for (name, mime, bytes) in [
        ("script.png", "image/png", b"#!/bin/sh\necho pwned\n".to_vec()),
        (
            "drawing.svg",
            "image/svg+xml",
            b"<svg xmlns=\"http://www.w3.org/2000/svg\"><script>alert(1)</script></svg>".to_vec(),
        ),
        ("page.html", "text/html", b"<!DOCTYPE html><html><body>hi</body></html>".to_vec()),
    ] {
        let response = app.upload(&token, name, mime, bytes).await;
        assert_eq!(problem_code(response).await, (415, "unsupported_media_type".to_owned()), "{name}");
    }
    let big = app.upload(&token, "big.png", "image/png", vec![0x89; 3 * 1024 * 1024]).await;
    assert_eq!(problem_code(big).await, (413, "payload_too_large".to_owned()));
    let empty = app.upload(&token, "empty.png", "image/png", Vec::new()).await;
    assert_eq!(problem_code(empty).await, (415, "unsupported_media_type".to_owned()));
    let none = app
        .client
        .post(format!("{}/api/v1/uploads", app.base))
        .bearer_auth(&token)
        .multipart(reqwest::multipart::Form::new().text("title", "no file"))
        .send()
        .await
        .unwrap();
    assert_eq!(problem_code(none).await, (422, "validation_failed".to_owned()));
    let json = app.post_json("/api/v1/uploads", &json!({"file": "x"}), Some(&token)).await;
    assert_eq!(problem_code(json).await, (415, "unsupported_media_type".to_owned()));
    let anonymous = app.client.post(format!("{}/api/v1/uploads", app.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);

    // A truncated file passes the header check, then fails cleanly in the job.
    let mut truncated = images::png(300, 300);
    truncated.truncate(truncated.len() / 3);
    let failed = app.uploaded(&token, truncated).await;
    assert_eq!(failed["status"], "failed", "{failed}");
    assert!(failed["failure_reason"].as_str().unwrap().contains("could not be read"), "{failed}");
    assert!(failed["urls"].is_null());
    // Too many animation frames: refused with the reason.
    let app_frames = spawn_app_with(|config| config.media.max_animation_frames = 2).await;
    let token = app_frames.token_for("bob").await;
    let long_gif = app_frames.uploaded(&token, images::animated_gif(40, 40, 3)).await;
    assert_eq!(long_gif["status"], "failed");
    assert!(long_gif["failure_reason"].as_str().unwrap().contains("more than 2 frames"), "{long_gif}");
    let scrape = app.scrape().await;
    assert!(crate::harness::metric(&scrape, "agora_media_uploads_total{outcome=\"refused_type\"}") >= 3.0);
    assert!(crate::harness::metric(&scrape, "agora_media_uploads_total{outcome=\"failed\"}") >= 1.0);
    assert_eq!(crate::harness::metric(&scrape, "agora_media_uploads_total{outcome=\"refused_size\"}"), 1.0);
    assert_eq!(crate::harness::metric(&scrape, "agora_media_uploads_total{outcome=\"refused_dimensions\"}"), 2.0);
}

async fn post_with_image(app: &TestApp, token: &str, image_id: &Value, extra: Value) -> reqwest::Response {
    let mut body = json!({"title": "look", "image_id": image_id});
    if let (Some(body), Some(extra)) = (body.as_object_mut(), extra.as_object()) {
        body.extend(extra.clone());
    }
    app.post_json("/api/v1/communities/pics/posts", &body, Some(token)).await
}

#[tokio::test]
async fn uploads_of_one_image_share_files_and_deleting_one_keeps_the_other() {
    let app = spawn_app().await;
    let ann = app.token_for("ann").await;
    let bob = app.token_for("bob").await;
    let bytes = images::png(400, 300);
    let first = app.uploaded(&ann, bytes.clone()).await;
    let second = app.uploaded(&bob, bytes).await;
    assert_ne!(first["id"], second["id"], "each upload keeps its own id");
    assert_eq!(first["urls"], second["urls"], "the same files");
    let url = first["urls"]["original"].as_str().unwrap().to_owned();

    let by_other = app.send_as(reqwest::Method::DELETE, &format!("/api/v1/uploads/{}", first["id"]), None, &bob).await;
    assert_eq!(problem_code(by_other).await, (403, "forbidden".to_owned()));
    let deleted = app.send_as(reqwest::Method::DELETE, &format!("/api/v1/uploads/{}", first["id"]), None, &ann).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get(&format!("/api/v1/uploads/{}", first["id"])).await.status(), StatusCode::NOT_FOUND);
    app.media(&url).await;
    let deleted = app.send_as(reqwest::Method::DELETE, &format!("/api/v1/uploads/{}", second["id"]), None, &bob).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.get(&url).await.status(), StatusCode::NOT_FOUND, "the last upload took the files");
    for bad in ["/media/../../etc/passwd", "/media/..%2F..%2Fetc%2Fpasswd", "/media/abc.webp", "/media/%00"] {
        assert_eq!(app.get(bad).await.status(), StatusCode::NOT_FOUND, "{bad}");
    }
}

#[tokio::test]
async fn posts_show_ready_images_of_their_author_with_nsfw_and_spoiler_flags() {
    let app = spawn_app().await;
    let ann = app.token_for("ann").await;
    let bob = app.token_for("bob").await;
    let created = app.post_json("/api/v1/communities", &json!({"name": "pics", "title": "Pics"}), Some(&ann)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let upload = app.uploaded(&ann, images::png(800, 600)).await;

    let not_mine = post_with_image(&app, &bob, &upload["id"], json!({})).await;
    assert_eq!(problem_code(not_mine).await, (403, "forbidden".to_owned()));
    let missing = post_with_image(&app, &ann, &json!(987_654), json!({})).await;
    assert_eq!(problem_code(missing).await, (403, "forbidden".to_owned()), "whether it exists is not told");

    let response = post_with_image(&app, &ann, &upload["id"], json!({"nsfw": true})).await;
    assert_eq!(response.status(), StatusCode::CREATED);
    let post: Value = response.json().await.unwrap();
    assert_eq!(post["image"]["id"], upload["id"]);
    assert_eq!((post["image"]["width"].as_i64(), post["image"]["height"].as_i64()), (Some(800), Some(600)));
    assert_eq!(post["image"]["urls"], upload["urls"]);
    assert_eq!((post["nsfw"].as_bool(), post["spoiler"].as_bool()), (Some(true), Some(false)));
    let id = post["id"].as_i64().unwrap();
    let edited = app
        .send_as(
            reqwest::Method::PATCH,
            &format!("/api/v1/posts/{id}"),
            Some(json!({"spoiler": true, "nsfw": false})),
            &ann,
        )
        .await;
    let edited: Value = edited.json().await.unwrap();
    assert_eq!((edited["nsfw"].as_bool(), edited["spoiler"].as_bool()), (Some(false), Some(true)));
    let listed: Value = app.get("/api/v1/posts?community=pics&sort=new").await.json().await.unwrap();
    assert_eq!(listed["items"][0]["image"]["urls"], upload["urls"]);

    // Deleting the upload leaves the post without an image (and no stale cache says otherwise).
    let deleted = app.send_as(reqwest::Method::DELETE, &format!("/api/v1/uploads/{}", upload["id"]), None, &ann).await;
    assert_eq!(deleted.status(), StatusCode::NO_CONTENT);
    let post: Value = app.get(&format!("/api/v1/posts/{id}")).await.json().await.unwrap();
    assert!(post["image"].is_null(), "{post}");
    let listed: Value = app.get("/api/v1/posts?community=pics&sort=new").await.json().await.unwrap();
    assert!(listed["items"][0]["image"].is_null());
}

#[tokio::test]
async fn an_avatar_is_a_ready_upload_shown_on_the_profile() {
    let app = spawn_app().await;
    let ann = app.token_for("ann").await;
    let upload = app.uploaded(&ann, images::png(500, 500)).await;
    let me = app
        .send_as(
            reqwest::Method::PATCH,
            "/api/v1/me",
            Some(json!({"avatar_id": upload["id"], "show_nsfw": true})),
            &ann,
        )
        .await;
    assert_eq!(me.status(), StatusCode::OK);
    let me: Value = me.json().await.unwrap();
    assert_eq!(me["avatar_url"], upload["urls"]["w320"]);
    assert_eq!(me["show_nsfw"], true);
    let profile: Value = app.get("/api/v1/users/ann").await.json().await.unwrap();
    assert_eq!(profile["avatar_url"], upload["urls"]["w320"]);
    let cleared = app.send_as(reqwest::Method::PATCH, "/api/v1/me", Some(json!({"avatar_id": null})), &ann).await;
    assert!(cleared.json::<Value>().await.unwrap()["avatar_url"].is_null());
    let bob = app.token_for("bob").await;
    let theirs =
        app.send_as(reqwest::Method::PATCH, "/api/v1/me", Some(json!({"avatar_id": upload["id"]})), &bob).await;
    assert_eq!(problem_code(theirs).await, (403, "forbidden".to_owned()));
}

#[tokio::test]
async fn orphans_go_after_the_grace_period_but_a_removed_posts_image_stays() {
    let app = spawn_app().await;
    let ann = app.token_for("ann").await;
    let created = app.post_json("/api/v1/communities", &json!({"name": "pics", "title": "Pics"}), Some(&ann)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let orphan = app.uploaded(&ann, images::png(64, 64)).await;
    let kept = app.uploaded(&ann, images::png(65, 64)).await;
    let removed = app.uploaded(&ann, images::png(66, 64)).await;
    let deleted = app.uploaded(&ann, images::png(67, 64)).await;
    let mut posts = Vec::new();
    for upload in [&kept, &removed, &deleted] {
        let post: Value = post_with_image(&app, &ann, &upload["id"], json!({})).await.json().await.unwrap();
        posts.push(post["id"].as_i64().unwrap());
    }
    let removal = json!({"reason": "off topic"});
    let response = app.post_json(&format!("/api/v1/mod/posts/{}/remove", posts[1]), &removal, Some(&ann)).await;
    assert!(response.status().is_success(), "{}", response.text().await.unwrap());
    let response = app.send_as(reqwest::Method::DELETE, &format!("/api/v1/posts/{}", posts[2]), None, &ann).await;
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    // Within the grace period nothing goes; past it, the orphans (the unused upload and the
    // image of the post its author deleted) do.
    let ctx = app.app().state().ctx.clone();
    assert_eq!(agora::service::media::sweep_orphans(&ctx).await.unwrap(), 0);
    app.db.execute("UPDATE uploads SET created_at = now() - interval '2 days'").await;
    assert_eq!(agora::service::media::sweep_orphans(&ctx).await.unwrap(), 2);
    for (upload, exists) in [(&orphan, false), (&kept, true), (&removed, true), (&deleted, false)] {
        let status = app.get(&format!("/api/v1/uploads/{}", upload["id"])).await.status();
        assert_eq!(status == StatusCode::OK, exists, "{upload}");
        let file = app.get(upload["urls"]["original"].as_str().unwrap()).await.status();
        assert_eq!(file == StatusCode::OK, exists, "the files of {upload}");
    }
}

#[tokio::test]
async fn uploads_have_a_rate_limit_of_their_own() {
    let app = spawn_app_with(|config| {
        config.rate_limits.enabled = true;
        config.rate_limits.uploads_per_hour = 2;
    })
    .await;
    let ann = app.token_for("ann").await;
    for _ in 0..2 {
        let response = app.upload(&ann, "a.png", "image/png", images::png(10, 10)).await;
        assert_eq!(response.status(), StatusCode::ACCEPTED);
    }
    let refused = app.upload(&ann, "a.png", "image/png", images::png(10, 10)).await;
    assert!(refused.headers().contains_key("retry-after"));
    assert_eq!(problem_code(refused).await, (429, "rate_limited".to_owned()));
    let bob = app.token_for("bob").await;
    assert_eq!(app.upload(&bob, "a.png", "image/png", images::png(10, 10)).await.status(), StatusCode::ACCEPTED);
    let scrape = app.scrape().await;
    assert_eq!(crate::harness::metric(&scrape, "agora_rate_limited_requests_total{class=\"uploads\"}"), 1.0);
}
