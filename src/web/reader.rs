//! The signed-in reader's pages: the save, hide and block buttons' forms, `/saved`,
//! `/messages` with each conversation and its reply form, and the filters in the settings.
//! Every form works without JavaScript and sends the reader back where they were.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::domain::reader::Mark;
use crate::domain::{Body, Limit};
use crate::edge::HttpState;
use crate::error::AppError;
use crate::service::messages::{self, Conversation, Message};
use crate::service::reader::{self, BlockTarget, SavedItem, SavedKind};
use crate::web::session::{CsrfForm, Viewer};
use crate::web::view::{CommentNode, Layout, PostItem, Time};
use crate::web::{PageError, layout, referer_path, render, see_other};

/// The form of a two-state button: `action` says which state to set.
#[derive(Debug, Deserialize)]
pub struct ToggleForm {
    action: String,
}

impl ToggleForm {
    fn on(&self, on: &str, off: &str) -> Result<bool, PageError> {
        match self.action.as_str() {
            a if a == on => Ok(true),
            a if a == off => Ok(false),
            _ => Err(AppError::invalid_field("action", format!("is {on} or {off}")).into()),
        }
    }
}

/// Back to the page the form was on, at `anchor`.
fn back(req: &HttpRequest, anchor: &str) -> HttpResponse {
    let back = referer_path(req);
    let back = back.split('#').next().unwrap_or("/");
    see_other(&format!("{back}#{anchor}"))
}

/// Sets or clears `mark` on `id` from a toggle form (`on` or `off`), then back to `anchor`.
async fn toggle_mark(
    req: &HttpRequest,
    state: &HttpState,
    viewer: &Viewer,
    (mark, id): (Mark, i64),
    form: &ToggleForm,
    (on, off): (&str, &str),
    anchor: String,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    reader::set_mark(state, auth, mark, id, form.on(on, off)?).await?;
    Ok(back(req, &anchor))
}

/// `POST /p/{id}/save`: save or unsave a post.
pub async fn save_post(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    form: CsrfForm<ToggleForm>,
) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    toggle_mark(&req, &state, &viewer, (Mark::SavedPost, id), &form.0, ("save", "unsave"), format!("p{id}")).await
}

/// `POST /p/{id}/hide`: hide or unhide a post (hidden, it leaves the reader's listings).
pub async fn hide_post(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    form: CsrfForm<ToggleForm>,
) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    toggle_mark(&req, &state, &viewer, (Mark::HiddenPost, id), &form.0, ("hide", "unhide"), format!("p{id}")).await
}

/// `POST /comments/{id}/save`: save or unsave a comment.
pub async fn save_comment(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    form: CsrfForm<ToggleForm>,
) -> Result<HttpResponse, PageError> {
    let id = id.into_inner();
    toggle_mark(&req, &state, &viewer, (Mark::SavedComment, id), &form.0, ("save", "unsave"), format!("c{id}")).await
}

/// `POST /u/{username}/block`: block or unblock a user.
pub async fn block_user(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    name: web::Path<String>,
    form: CsrfForm<ToggleForm>,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    let name = crate::edge::names::user(&name)?;
    reader::set_block(&state, auth, BlockTarget::User, name.as_str(), form.0.on("block", "unblock")?).await?;
    Ok(back(&req, "top"))
}

/// `POST /c/{name}/block`: block or unblock a community.
pub async fn block_community(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    name: web::Path<String>,
    form: CsrfForm<ToggleForm>,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    let name = crate::edge::names::community(&name)?;
    reader::set_block(&state, auth, BlockTarget::Community, name.as_str(), form.0.on("block", "unblock")?).await?;
    Ok(back(&req, "top"))
}

#[derive(Template)]
#[template(path = "saved.html")]
struct SavedListPage {
    layout: Layout,
    showing_comments: bool,
    posts: Vec<PostItem>,
    comments: Vec<CommentNode>,
    next_href: Option<String>,
}

/// Query of `/saved`.
#[derive(Debug, Default, Deserialize)]
pub struct SavedParams {
    show: Option<String>,
    cursor: Option<String>,
}

/// `GET /saved`: the reader's saved posts or comments, most recently saved first.
pub async fn saved(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: web::Query<SavedParams>,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    let showing_comments = params.show.as_deref() == Some("comments");
    let kind = if showing_comments { SavedKind::Comments } else { SavedKind::Posts };
    let page = reader::saved(&state, auth, kind, Limit::fixed(25), params.cursor.as_deref()).await?;
    let now = Utc::now();
    let mut posts = Vec::new();
    let mut saved_comments = Vec::new();
    for item in page.items {
        match item {
            SavedItem::Post(post) => posts.push(PostItem::new(*post, now)),
            SavedItem::Comment(comment) => saved_comments.push(*comment),
        }
    }
    let comments = crate::web::view::flatten(saved_comments, now);
    let next_cursor = page.next_cursor;
    let show = if showing_comments { "show=comments&" } else { "" };
    let next_href = next_cursor.map(|cursor| format!("/saved?{show}cursor={cursor}"));
    let layout = layout(&state, &viewer).await?;
    render(&req, &SavedListPage { layout, showing_comments, posts, comments, next_href })
}

/// A message as the pages show it.
pub struct MessageItem {
    id: i64,
    from: String,
    body_html: String,
    created: Time,
    mine: bool,
}

impl MessageItem {
    fn new(message: Message, me: &str, now: chrono::DateTime<Utc>) -> Self {
        Self {
            id: message.id,
            mine: message.from.eq_ignore_ascii_case(me),
            from: message.from,
            body_html: message.body_html,
            created: Time::at(message.created_at, now),
        }
    }
}

/// A conversation in the list.
pub struct ConversationItem {
    with: String,
    latest: MessageItem,
    excerpt: String,
}

#[derive(Template)]
#[template(path = "messages.html")]
struct MessagesPage {
    layout: Layout,
    /// Open reports of messages, for a site admin (`None` for everyone else).
    open_reports: Option<usize>,
    conversations: Vec<ConversationItem>,
    to: String,
    body: String,
    error: Option<String>,
}

/// Query of `/messages`: `to` fills the new message's recipient (the profile's link).
#[derive(Debug, Default, Deserialize)]
pub struct MessagesParams {
    to: Option<String>,
}

/// `GET /messages`: the reader's conversations, newest first, and a form for a new one.
pub async fn messages_page(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: web::Query<MessagesParams>,
) -> Result<HttpResponse, PageError> {
    let to = params.into_inner().to.unwrap_or_default();
    messages_with(&req, &state, &viewer, to, String::new(), None, actix_web::http::StatusCode::OK).await
}

async fn messages_with(
    req: &HttpRequest,
    state: &HttpState,
    viewer: &Viewer,
    to: String,
    body: String,
    error: Option<String>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    let layout = layout(state, viewer).await?;
    let me = layout.username.clone().unwrap_or_default();
    let now = Utc::now();
    let conversations = messages::conversations(state, auth, Limit::fixed(50))
        .await?
        .into_iter()
        .map(|Conversation { with, latest }| ConversationItem {
            with,
            excerpt: crate::service::inbox::excerpt(&latest.body),
            latest: MessageItem::new(latest, &me, now),
        })
        .collect();
    // Site admins see how many reported messages wait for them; to anyone else it is 403.
    let open_reports = match messages::open_reports(state, auth, Limit::fixed(100)).await {
        Ok(reports) => Some(reports.len()),
        Err(err) if err.code == crate::error::ErrorCode::Forbidden => None,
        Err(err) => return Err(err.into()),
    };
    let page = MessagesPage { layout, open_reports, conversations, to, body, error };
    crate::web::render_with_status(req, &page, status)
}

/// The new-message form.
#[derive(Debug, Deserialize)]
pub struct NewMessageForm {
    to: String,
    body: String,
}

/// `POST /messages`: starts (or continues) a conversation; errors show on the form.
pub async fn send_new(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    form: CsrfForm<NewMessageForm>,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    let NewMessageForm { to, body } = form.0;
    match send(&state, auth, to.trim(), &body).await {
        Ok(message) => Ok(see_other(&format!("/messages/{}#m{}", message.to, message.id))),
        Err(err) => messages_with(&req, &state, &viewer, to, body, Some(refusal(&err)), refused_status(&err)).await,
    }
}

async fn send(
    state: &HttpState,
    auth: crate::service::accounts::Authenticated,
    to: &str,
    body: &str,
) -> Result<Message, AppError> {
    let to = crate::edge::names::user(to)?;
    if body.chars().count() > 10_000 {
        return Err(AppError::invalid_field("body", "a message is at most 10,000 characters"));
    }
    let body = Body::parse_comment(body).map_err(|err| AppError::invalid_field("body", err.to_string()))?;
    messages::send(state, auth, &to, body).await
}

/// The status of a form shown again with a refused message's reason.
fn refused_status(err: &AppError) -> actix_web::http::StatusCode {
    actix_web::http::StatusCode::from_u16(err.code.status())
        .unwrap_or(actix_web::http::StatusCode::UNPROCESSABLE_ENTITY)
}

/// What a refused message says on the form.
fn refusal(err: &AppError) -> String {
    match err.code {
        crate::error::ErrorCode::Blocked => "This user does not accept your messages.".into(),
        crate::error::ErrorCode::NotFound => "There is no user of that name.".into(),
        _ => err.errors.first().map_or_else(|| err.detail.clone(), |field| field.message.clone()),
    }
}

#[derive(Template)]
#[template(path = "conversation.html")]
struct ConversationPage {
    layout: Layout,
    with: String,
    /// Oldest first, as a conversation reads.
    messages: Vec<MessageItem>,
    older_href: Option<String>,
    body: String,
    error: Option<String>,
    reported: bool,
}

/// Query of a conversation page.
#[derive(Debug, Default, Deserialize)]
pub struct ConversationParams {
    cursor: Option<String>,
    reported: Option<String>,
}

/// `GET /messages/{username}`: the conversation with one user and a reply form.
pub async fn conversation(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    with: web::Path<String>,
    params: web::Query<ConversationParams>,
) -> Result<HttpResponse, PageError> {
    let params = params.into_inner();
    conversation_with(&req, &state, &viewer, &with, params, String::new(), None, actix_web::http::StatusCode::OK).await
}

#[allow(clippy::too_many_arguments)]
async fn conversation_with(
    req: &HttpRequest,
    state: &HttpState,
    viewer: &Viewer,
    with: &str,
    params: ConversationParams,
    body: String,
    error: Option<String>,
    status: actix_web::http::StatusCode,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    let with = crate::edge::names::user(with)?;
    let page = messages::conversation(state, auth, &with, Limit::fixed(50), params.cursor.as_deref()).await?;
    let layout = layout(state, viewer).await?;
    let me = layout.username.clone().unwrap_or_default();
    let now = Utc::now();
    let mut messages: Vec<MessageItem> = page.items.into_iter().map(|m| MessageItem::new(m, &me, now)).collect();
    messages.reverse();
    let older_href = page.next_cursor.map(|cursor| format!("/messages/{with}?cursor={cursor}"));
    let template = ConversationPage {
        layout,
        with: with.as_str().to_owned(),
        messages,
        older_href,
        body,
        error,
        reported: params.reported.is_some(),
    };
    crate::web::render_with_status(req, &template, status)
}

/// The reply form of a conversation.
#[derive(Debug, Deserialize)]
pub struct ReplyForm {
    body: String,
}

/// `POST /messages/{username}`: a message in the conversation.
pub async fn reply(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    with: web::Path<String>,
    form: CsrfForm<ReplyForm>,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    match send(&state, auth, &with, &form.0.body).await {
        Ok(message) => Ok(see_other(&format!("/messages/{}#m{}", message.to, message.id))),
        Err(err) if err.code == crate::error::ErrorCode::NotFound => Err(err.into()),
        Err(err) => {
            let (params, status) = (ConversationParams::default(), refused_status(&err));
            conversation_with(&req, &state, &viewer, &with, params, form.0.body, Some(refusal(&err)), status).await
        }
    }
}

/// The report form of a message.
#[derive(Debug, Deserialize)]
pub struct ReportForm {
    reason: String,
}

/// `POST /messages/{username}/{id}/report`: report a message received to the site admins.
pub async fn report(
    state: web::Data<HttpState>,
    viewer: Viewer,
    path: web::Path<(String, i64)>,
    form: CsrfForm<ReportForm>,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    let (with, id) = path.into_inner();
    let with = crate::edge::names::user(&with)?;
    let reason = crate::domain::content::Reason::parse(&form.0.reason)
        .map_err(|err| AppError::invalid_field("reason", err.to_string()))?;
    messages::report(&state, auth, id, crate::service::moderation::Why { rule_index: None, reason }).await?;
    Ok(see_other(&format!("/messages/{with}?reported=1")))
}

/// The filters form of the settings: keywords, one per line, and the NSFW choice (an
/// unchecked box is absent).
#[derive(Debug, Deserialize)]
pub struct FiltersForm {
    keywords: String,
    show_nsfw: Option<String>,
}

/// `POST /settings/filters`: replaces the filtered keywords and sets the NSFW choice.
pub async fn save_filters(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    form: CsrfForm<FiltersForm>,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    let lines: Vec<String> =
        form.0.keywords.lines().map(str::trim).filter(|line| !line.is_empty()).map(str::to_owned).collect();
    let parsed = crate::domain::reader::FilteredKeywords::parse(&lines)
        .map_err(|err| AppError::invalid_field("filtered_keywords", err.to_string()));
    let update = match parsed {
        Ok(keywords) => crate::service::accounts::ProfileUpdate {
            filtered_keywords: Some(keywords),
            show_nsfw: Some(form.0.show_nsfw.is_some()),
            ..crate::service::accounts::ProfileUpdate::default()
        },
        Err(err) => return crate::web::account::settings_with_errors(&req, &state, &viewer, err).await,
    };
    crate::service::accounts::update_me(&state, auth, update).await?;
    Ok(see_other("/settings?saved=filters#filters-heading"))
}

#[derive(Template)]
#[template(path = "message_reports.html")]
struct MessageReportsPage {
    layout: Layout,
    reports: Vec<(crate::service::moderation::ReportView, Time)>,
    notice: Option<&'static str>,
}

/// Query of the reported messages page.
#[derive(Debug, Default, Deserialize)]
pub struct MessageReportsParams {
    notice: Option<String>,
}

/// `GET /reports/messages`: the site admins' queue of reported messages, with the text.
pub async fn message_reports(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: web::Query<MessageReportsParams>,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    let now = Utc::now();
    let reports = messages::open_reports(&state, auth, Limit::fixed(100)).await?;
    let reports = reports.into_iter().map(|report| {
        let time = Time::at(report.created_at, now);
        (report, time)
    });
    let notice = params.notice.as_deref().map(|_| "The report is closed.");
    render(&req, &MessageReportsPage { layout: layout(&state, &viewer).await?, reports: reports.collect(), notice })
}
