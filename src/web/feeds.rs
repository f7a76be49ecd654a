//! Atom 1.0 feeds (`/feed.xml`, `/c/{name}/feed.xml`, `/u/{username}/feed.xml`): the hot front
//! page, a community's new posts and a user's posts, 25 entries each, every link absolute from
//! `server.public_url`, with an ETag. Read through the same services and caches as the pages.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::{DateTime, SecondsFormat, Utc};

use crate::domain::{Limit, PostSort, TimeWindow};
use crate::edge::HttpState;
use crate::error::AppError;
use crate::service::posts::{self, ListRequest, Post};
use crate::web::PageError;

/// Entries in a feed.
const ENTRIES: i64 = 25;

#[derive(Template)]
#[template(path = "feed.xml")]
struct FeedDocument {
    feed: Feed,
}

struct Feed {
    id: String,
    title: String,
    subtitle: String,
    updated: String,
    self_href: String,
    html_href: String,
    version: &'static str,
    entries: Vec<Entry>,
}

struct Entry {
    id: String,
    title: String,
    href: String,
    related: Option<String>,
    published: String,
    updated: String,
    author: String,
    author_href: String,
    community: String,
    content_html: String,
}

fn time(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn entry(base: &str, post: &Post) -> Entry {
    let view = &post.view;
    let href = format!("{base}/p/{}", view.id);
    let mut content = String::new();
    if let Some(image) = &post.image {
        content.push_str(&format!(
            "<p><a href=\"{base}{}\"><img src=\"{base}{}\" width=\"{}\" height=\"{}\" alt=\"\"></a></p>",
            image.urls.original,
            image.urls.w640,
            image.width.min(640),
            i64::from(image.height) * i64::from(image.width.min(640)) / i64::from(image.width.max(1)),
        ));
    }
    if let Some(url) = &view.url {
        let url = crate::markdown::escape_html(url);
        content.push_str(&format!("<p><a href=\"{url}\">{url}</a></p>"));
    }
    content.push_str(&view.body_html);
    content.push_str(&format!(
        "<p><a href=\"{href}\">{}</a></p>",
        crate::web::view::plural(i64::from(view.comment_count), "comment")
    ));
    Entry {
        id: href.clone(),
        title: view.title.clone(),
        href,
        related: view.url.clone(),
        published: time(view.created_at),
        updated: time(view.edited_at.unwrap_or(view.created_at)),
        author: view.author.clone(),
        author_href: format!("{base}/u/{}", view.author),
        community: view.community.clone(),
        content_html: content,
    }
}

fn answer(req: &HttpRequest, feed: Feed) -> Result<HttpResponse, PageError> {
    let xml = FeedDocument { feed }.render().map_err(AppError::internal)?;
    let etag = crate::service::cache::etag_of(xml.as_bytes());
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let mut response = if unchanged { HttpResponse::NotModified() } else { HttpResponse::Ok() };
    response.insert_header((header::ETAG, etag)).insert_header((header::CACHE_CONTROL, "public, max-age=300"));
    if unchanged {
        return Ok(response.finish());
    }
    Ok(response.content_type("application/atom+xml; charset=utf-8").body(xml))
}

fn feed(state: &HttpState, path: &str, html_path: &str, title: String, subtitle: String, posts: &[Post]) -> Feed {
    let base = state.config.server.public_url.trim_end_matches('/').to_owned();
    let entries: Vec<Entry> =
        posts.iter().filter(|p| !p.view.deleted && !p.view.removed).map(|p| entry(&base, p)).collect();
    let updated = posts.iter().map(|p| p.view.edited_at.unwrap_or(p.view.created_at)).max().unwrap_or_else(Utc::now);
    Feed {
        id: format!("{base}{path}"),
        title,
        subtitle,
        updated: time(updated),
        self_href: format!("{base}{path}"),
        html_href: format!("{base}{html_path}"),
        version: env!("CARGO_PKG_VERSION"),
        entries,
    }
}

async fn listing(
    state: &HttpState,
    community: Option<crate::domain::CommunityName>,
    sort: PostSort,
) -> Result<Vec<Post>, AppError> {
    let request = ListRequest {
        community,
        sort,
        window: TimeWindow::default(),
        limit: Limit::parse(Some(ENTRIES), ENTRIES, ENTRIES).map_err(|e| AppError::bad_request(e.to_string()))?,
        cursor: None,
        feed_of: None,
    };
    let served = posts::list_cached(state, request, None).await?;
    Ok(served.data::<crate::service::communities::Page<Post>>().map(|page| page.items.clone()).unwrap_or_default())
}

/// `GET /feed.xml`: the hot front page.
pub async fn front(req: HttpRequest, state: web::Data<HttpState>) -> Result<HttpResponse, PageError> {
    let posts = listing(&state, None, PostSort::Hot).await?;
    let feed = feed(&state, "/feed.xml", "/", "Agora".into(), "The hot posts of every community".into(), &posts);
    answer(&req, feed)
}

/// `GET /c/{name}/feed.xml`: a community's new posts.
pub async fn community(
    req: HttpRequest,
    state: web::Data<HttpState>,
    name: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let name = crate::edge::names::community(&name)?;
    let view = crate::service::communities::get_for(&state, &name, None).await?;
    let posts = listing(&state, Some(name), PostSort::New).await?;
    let path = format!("/c/{}/feed.xml", view.name);
    let feed = feed(
        &state,
        &path,
        &format!("/c/{}", view.name),
        format!("c/{}: {}", view.name, view.title),
        "New posts".into(),
        &posts,
    );
    answer(&req, feed)
}

/// `GET /u/{username}/feed.xml`: a user's posts, newest first.
pub async fn user(
    req: HttpRequest,
    state: web::Data<HttpState>,
    username: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let username = crate::edge::names::user(&username)?;
    let listing = crate::service::users::AuthorListing {
        username: username.clone(),
        sort: crate::domain::content::ProfileSort::New,
        limit: Limit::parse(Some(ENTRIES), ENTRIES, ENTRIES).map_err(|e| AppError::bad_request(e.to_string()))?,
        cursor: None,
    };
    let page = crate::service::users::posts_of(&state, &listing, None).await?;
    let name = page.items.first().map_or_else(|| username.as_str().to_owned(), |p| p.view.author.clone());
    let path = format!("/u/{name}/feed.xml");
    let feed =
        feed(&state, &path, &format!("/u/{name}"), format!("u/{name}"), format!("Posts by u/{name}"), &page.items);
    answer(&req, feed)
}
