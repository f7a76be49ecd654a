//! Atom feeds of the front page, a community and a user: valid Atom 1.0 (parsed by Python's
//! XML parser), absolute links from `server.public_url`, text escaped, ETags, and the pages
//! linking them.

use std::io::Write;
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::harness::{TestApp, spawn_app_with};

/// What Python's XML parser makes of an Atom document: the feed's id and title, and per entry
/// its id, title, alternate link, author and whether it has content, updated and published.
pub fn parse_atom(xml: &str) -> Value {
    let script = r#"
import json, sys, xml.etree.ElementTree as ET
A = "{http://www.w3.org/2005/Atom}"
root = ET.fromstring(sys.stdin.buffer.read())
assert root.tag == A + "feed", root.tag
for required in ("id", "title", "updated"):
    assert root.find(A + required) is not None, required
links = [l.get("href") for l in root.iter(A + "link")]
entries = []
for e in root.findall(A + "entry"):
    for required in ("id", "title", "updated", "published", "content", "author/" + A + "name"):
        assert e.find(A + required) is not None, required
    alternate = [l.get("href") for l in e.findall(A + "link") if l.get("rel") == "alternate"][0]
    entries.append({"id": e.find(A + "id").text, "title": e.find(A + "title").text, "href": alternate,
                    "author": e.find(A + "author/" + A + "name").text, "content": e.find(A + "content").text})
print(json.dumps({"id": root.find(A + "id").text, "title": root.find(A + "title").text, "links": links, "entries": entries}))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3");
    child.stdin.take().unwrap().write_all(xml.as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "not valid Atom: {}\n{xml}", String::from_utf8_lossy(&output.stderr));
    serde_json::from_slice(&output.stdout).unwrap()
}

async fn feed(app: &TestApp, path: &str) -> (Value, String) {
    let response = app.get(path).await;
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    assert_eq!(response.headers()["content-type"], "application/atom+xml; charset=utf-8");
    let etag = response.headers()["etag"].to_str().unwrap().to_owned();
    let xml = response.text().await.unwrap();
    (parse_atom(&xml), etag)
}

#[tokio::test]
async fn feeds_are_valid_atom_with_absolute_links_and_escaped_text() {
    let app = spawn_app_with(|config| config.server.public_url = "https://agora.example".into()).await;
    let ann = app.token_for("ann").await;
    let created =
        app.post_json("/api/v1/communities", &json!({"name": "town", "title": "Town & Gown"}), Some(&ann)).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let posts = [
        json!({"title": "Tom & Jerry <b>", "body": "Hello **world** <script>alert(1)</script>"}),
        json!({"title": "A link", "url": "https://example.org/a?b=1&c=2"}),
    ];
    for post in &posts {
        let response = app.post_json("/api/v1/communities/town/posts", post, Some(&ann)).await;
        assert_eq!(response.status(), StatusCode::CREATED);
    }
    let upload = app.uploaded(&ann, crate::media::images::png(800, 400)).await;
    let with_image = json!({"title": "A picture", "image_id": upload["id"]});
    assert_eq!(
        app.post_json("/api/v1/communities/town/posts", &with_image, Some(&ann)).await.status(),
        StatusCode::CREATED
    );

    for path in ["/feed.xml", "/c/town/feed.xml", "/u/ann/feed.xml"] {
        let (atom, etag) = feed(&app, path).await;
        let entries = atom["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 3, "{path}: {atom}");
        for link in atom["links"].as_array().unwrap() {
            assert!(link.as_str().unwrap().starts_with("https://"), "{path}: every link is absolute: {link}");
        }
        assert!(atom["id"].as_str().unwrap().starts_with("https://agora.example/"));
        let tom = entries.iter().find(|e| e["title"] == "Tom & Jerry <b>").expect("the title, as text");
        assert!(tom["href"].as_str().unwrap().starts_with("https://agora.example/p/"));
        assert_eq!(tom["author"], "ann");
        let content = tom["content"].as_str().unwrap();
        assert!(content.contains("<strong>world</strong>"), "the sanitized HTML: {content}");
        assert!(!content.contains("<script"), "{content}");
        let picture = entries.iter().find(|e| e["title"] == "A picture").unwrap();
        assert!(picture["content"].as_str().unwrap().contains("src=\"https://agora.example/media/"), "{picture}");
        let again = app.client.get(format!("{}{path}", app.base)).header("if-none-match", &etag).send().await.unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED, "{path}");
    }
    assert_eq!(app.get("/c/nowhere/feed.xml").await.status(), StatusCode::NOT_FOUND);
    assert_eq!(app.get("/u/nobody/feed.xml").await.status(), StatusCode::NOT_FOUND);
    for (page, href) in [("/", "/feed.xml"), ("/c/town", "/c/town/feed.xml"), ("/u/ann", "/u/ann/feed.xml")] {
        let html = app.get(page).await.text().await.unwrap();
        let link = "<link rel=\"alternate\" type=\"application/atom+xml\"";
        assert!(html.contains(link) && html.contains(&format!("href=\"{href}\"")), "{page} links its feed");
    }
}
