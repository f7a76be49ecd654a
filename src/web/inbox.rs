//! `/inbox`: the signed-in user's replies, mentions and moderators' notes, with forms to mark
//! them read (one, or all); the header's badge counts the unread ones.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::domain::Limit;
use crate::edge::HttpState;
use crate::service::inbox::{self, InboxItem};
use crate::web::session::{CsrfForm, Viewer};
use crate::web::thread::EmptyForm;
use crate::web::view::{Layout, Time};
use crate::web::{PageError, layout, render, see_other};

/// One item as the page shows it.
pub struct ItemView {
    id: i64,
    kind: String,
    from: Option<String>,
    excerpt: String,
    read: bool,
    post_id: Option<i64>,
    comment_id: Option<i64>,
    created: Time,
}

impl ItemView {
    fn new(item: InboxItem, now: chrono::DateTime<Utc>) -> Self {
        Self {
            id: item.id,
            kind: item.kind,
            from: item.from,
            excerpt: item.excerpt,
            read: item.read,
            post_id: item.post_id,
            comment_id: item.comment_id,
            created: Time::at(item.created_at, now),
        }
    }

    /// What kind of item it is, in words.
    pub fn label(&self) -> &'static str {
        match self.kind.as_str() {
            "reply" => "Reply",
            "mention" => "Mention",
            "message" => "Message",
            _ => "Moderator",
        }
    }

    /// Where it happened: the conversation, the comment in its thread, or the post.
    pub fn href(&self) -> Option<String> {
        if self.kind == "message" {
            return self.from.as_ref().map(|from| format!("/messages/{from}"));
        }
        match (self.post_id, self.comment_id) {
            (Some(post), Some(comment)) => Some(format!("/p/{post}/comments/{comment}")),
            (Some(post), None) => Some(format!("/p/{post}")),
            _ => None,
        }
    }
}

#[derive(Template)]
#[template(path = "inbox.html")]
struct InboxPage {
    layout: Layout,
    items: Vec<ItemView>,
    unread_only: bool,
    next_href: Option<String>,
}

/// Query of the inbox page.
#[derive(Debug, Default, Deserialize)]
pub struct InboxParams {
    unread: Option<String>,
    cursor: Option<String>,
}

/// `GET /inbox`
pub async fn page(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: web::Query<InboxParams>,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    let unread_only = params.unread.is_some();
    let page = inbox::page(&state, auth.user_id, unread_only, Limit::fixed(25), params.cursor.as_deref()).await?;
    let now = Utc::now();
    let next_href = page.next_cursor.map(|cursor| {
        let unread = if unread_only { "unread=1&" } else { "" };
        format!("/inbox?{unread}cursor={cursor}")
    });
    let items = page.items.into_iter().map(|item| ItemView::new(item, now)).collect();
    render(&req, &InboxPage { layout: layout(&state, &viewer).await?, items, unread_only, next_href })
}

/// `POST /inbox/{id}/read`
pub async fn read(
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    _form: CsrfForm<EmptyForm>,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    inbox::mark_read(&state, auth.user_id, id.into_inner()).await?;
    Ok(see_other("/inbox"))
}

/// `POST /inbox/read-all`
pub async fn read_all(
    state: web::Data<HttpState>,
    viewer: Viewer,
    _form: CsrfForm<EmptyForm>,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    inbox::mark_all_read(&state, auth.user_id).await?;
    Ok(see_other("/inbox"))
}
