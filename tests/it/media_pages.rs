//! Image posts in a real browser, with JavaScript on and off: an image chosen in the submit
//! form shows as a thumbnail in the listing and large on the post page (sized, so nothing
//! shifts), an NSFW image stays blurred until clicked unless the reader chose otherwise, and
//! an avatar set in the settings shows beside the user's name. Accessible throughout.

use std::path::PathBuf;

use crate::browser::Browser;
use crate::harness::spawn_app;
use crate::media::images;

async fn sign_up(browser: &Browser, base: &str, username: &str) {
    browser.goto(&format!("{base}/signup")).await;
    browser.fill("#username", username).await;
    browser.fill("#email", &format!("{username}@example.org")).await;
    browser.fill("#password", "password123").await;
    browser.submit("main form button[type=submit]").await;
    assert_eq!(browser.text("#me").await, username);
}

fn image_file(dir: &std::path::Path, name: &str, bytes: Vec<u8>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

async fn submit_image_post(browser: &Browser, base: &str, title: &str, image: &std::path::Path, nsfw: bool) {
    browser.goto(&format!("{base}/submit?community=pics")).await;
    browser.fill("#title", title).await;
    browser.choose_file("#file", image).await;
    if nsfw {
        browser.click("input[name=nsfw]").await;
    }
    browser.submit("main form button[type=submit]").await;
    assert_eq!(browser.text("article.post-full h1").await, title, "the post page after submitting");
}

async fn journey(javascript: bool) {
    let app = spawn_app().await;
    let base = app.base.clone();
    let files = tempfile::tempdir().unwrap();
    let photo = image_file(files.path(), "photo.jpg", images::jpeg_rotated_with_gps(1600, 1000));
    let nsfw = image_file(files.path(), "nsfw.png", images::png(700, 500));
    let avatar = image_file(files.path(), "me.png", images::png(256, 256));
    let browser = Browser::start(javascript).await;
    sign_up(&browser, &base, "ann").await;
    browser.goto(&format!("{base}/communities/new")).await;
    browser.fill("#name", "pics").await;
    browser.fill("#title", "Pictures").await;
    browser.submit("main form button[type=submit]").await;

    // A photo: large on its post page, upright (1000 wide, 1600 high) and sized.
    submit_image_post(&browser, &base, "A tall photo", &photo, false).await;
    let large = "article.post-full img.post-image";
    assert!(browser.displayed(large).await);
    assert_eq!(browser.attribute(large, "width").await.as_deref(), Some("1000"));
    assert_eq!(browser.attribute(large, "height").await.as_deref(), Some("1600"));
    let srcset = browser.attribute(large, "srcset").await.unwrap_or_default();
    assert!(srcset.contains(" 320w") && srcset.contains(" 640w") && srcset.contains(" 1000w"), "{srcset}");
    if javascript {
        browser.screenshot("images-post-1280-light").await;
        let loaded = browser.execute(&format!("return document.querySelector('{large}').naturalWidth;")).await;
        assert!(loaded.as_u64().unwrap_or(0) > 0, "the image loads: {loaded}");
        assert!(browser.accessibility_violations().await.is_empty(), "the post page with an image is accessible");
    }

    // An NSFW image: blurred in the listing until clicked.
    submit_image_post(&browser, &base, "Not for work", &nsfw, true).await;
    browser.goto(&format!("{base}/c/pics")).await;
    let thumb = "ol.posts li .post-thumb a.post-image-link img";
    assert_eq!(browser.attribute(thumb, "loading").await.as_deref(), Some("lazy"));
    assert_eq!(browser.attribute(thumb, "width").await.as_deref(), Some("320"), "thumbnails are sized");
    assert_eq!(browser.attribute(thumb, "height").await.as_deref(), Some("512"));
    let cover = "ol.posts li details.sensitive summary img.cover";
    let hidden = "ol.posts li details.sensitive a img.post-image";
    assert!(browser.displayed(cover).await, "the NSFW image shows a cover");
    assert!(!browser.displayed(hidden).await, "and not the image");
    if javascript {
        let filter =
            browser.execute(&format!("return getComputedStyle(document.querySelector('{cover}')).filter;")).await;
        assert!(filter.as_str().unwrap_or_default().contains("blur"), "the cover is blurred: {filter}");
        assert!(browser.accessibility_violations().await.is_empty(), "the listing with images is accessible");
    }
    if javascript {
        browser.screenshot("images-listing-1280-light").await;
    }
    browser.click("ol.posts li details.sensitive summary").await;
    assert!(browser.displayed(hidden).await, "clicking shows the image");

    // An avatar, and the choice to see NSFW images unblurred.
    browser.goto(&format!("{base}/settings")).await;
    browser.choose_file("#file", &avatar).await;
    browser.submit("section[aria-labelledby=images-heading] button[type=submit]").await;
    assert!(browser.url().await.ends_with("/settings?saved=images"));
    browser.click("#show_nsfw").await;
    browser.submit("section[aria-labelledby=filters-heading] button[type=submit]").await;
    assert!(browser.url().await.contains("/settings?saved=filters"));
    assert!(browser.displayed("#me img.avatar").await, "the avatar beside the name in the header");
    browser.goto(&format!("{base}/c/pics")).await;
    assert_eq!(browser.count("details.sensitive").await, 0, "NSFW images unblurred for this reader");
    assert!(browser.count("ol.posts .meta img.avatar").await >= 2, "avatars beside the author's name");
    if javascript {
        assert!(browser.accessibility_violations().await.is_empty());
    }
}

#[tokio::test]
async fn image_posts_work_in_a_real_browser() {
    journey(true).await;
}

#[tokio::test]
async fn image_posts_work_with_javascript_off() {
    journey(false).await;
}
