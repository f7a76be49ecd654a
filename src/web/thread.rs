//! The post page: the post, its comment tree, reply forms in place, votes, edits and deletes,
//! "continue this thread", and the thread summary.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::domain::{Body, CommentId, CommentSort, Limit, PostId, PostTitle, VoteValue};
use crate::edge::HttpState;
use crate::error::AppError;
use crate::service::comments::Tree;
use crate::service::comments::{self, TreeShape};
use crate::service::communities::CommunityView;
use crate::service::posts::{self, Post, PostEdit};
use crate::web::session::{CsrfForm, Viewer};
use crate::web::shared_page::{self, SharedPage, anonymous_layout};
use crate::web::view::{CommentNode, Layout, PostItem, Tab, flatten};
use crate::web::{PageError, layout, render, see_other};

/// Levels of replies a page shows before "continue this thread".
const PAGE_DEPTH: i32 = 6;
/// Top-level comments per page.
const TOP_LEVEL_PER_PAGE: i64 = 50;

/// Query of the post page.
#[derive(Debug, Default, Deserialize)]
pub struct ThreadParams {
    sort: Option<CommentSort>,
    cursor: Option<String>,
    reported: Option<String>,
}

#[derive(Template)]
#[template(path = "post.html")]
struct PostPage {
    layout: Layout,
    post: PostItem,
    community: crate::service::communities::CommunityView,
    moderates: bool,
    comments: Vec<CommentNode>,
    sorts: Vec<Tab>,
    next_href: Option<String>,
    /// Set on "continue this thread" pages: the comment the page starts at.
    focus: Option<i64>,
    summary_box: bool,
    /// Set after the viewer filed a report.
    reported: bool,
}

/// `GET /p/{id}`: the post and a page of its comment tree, in a constant number of queries.
pub async fn post_page(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    params: web::Query<ThreadParams>,
) -> Result<HttpResponse, PageError> {
    let id = PostId(id.into_inner());
    let sort = params.sort.unwrap_or_default();
    let shape = TreeShape { sort, max_depth: PAGE_DEPTH };
    let limit = Limit::fixed(TOP_LEVEL_PER_PAGE);
    if viewer.auth.is_none() && params.reported.is_none() {
        // Anonymous: the page is rendered once from the cached post, tree and community.
        let post = posts::get_cached(&state, id, None).await?;
        let tree = comments::tree_cached(&state, id, shape, limit, params.cursor.as_deref(), None).await?;
        let post_view = post.data::<Post>().ok_or_else(|| AppError::not_found("post"))?;
        let community_name = crate::edge::names::community(&post_view.view.community)?;
        let community = crate::service::communities::get_cached(&state, &community_name, None).await?;
        let deps = [&post.entry, &community.entry];
        let shared = tree.entry.derived(&deps, shared_page::MAX_AGE, || {
            let community =
                community.data::<CommunityView>().cloned().ok_or_else(|| AppError::not_found("community"))?;
            let tree = tree.data::<Tree>().cloned().ok_or_else(|| AppError::not_found("post"))?;
            let page = ThreadPage { post: post_view.clone(), tree, community, sort, moderates: false, reported: false };
            SharedPage::render(&page.into_template(&state, anonymous_layout()))
        })?;
        return Ok(shared.respond(&req, &viewer.csrf));
    }
    let post = posts::get_for(&state, id, viewer.auth).await?;
    let tree = comments::tree_for(&state, id, shape, limit, params.cursor.as_deref(), viewer.auth).await?;
    let community_name = crate::edge::names::community(&post.view.community)?;
    let community = crate::service::communities::get_for(&state, &community_name, viewer.auth).await?;
    let layout = layout(&state, &viewer).await?;
    let moderates = crate::web::browse::moderates(&state, &viewer, &layout, &community).await?;
    let page = ThreadPage { post, tree, community, sort, moderates, reported: params.reported.is_some() };
    render(&req, &page.into_template(&state, layout))
}

/// What a post page shows, before it meets its frame.
struct ThreadPage {
    post: Post,
    tree: Tree,
    community: CommunityView,
    sort: CommentSort,
    moderates: bool,
    reported: bool,
}

impl ThreadPage {
    fn into_template(self, state: &HttpState, layout: Layout) -> PostPage {
        let now = Utc::now();
        let id = self.post.view.id;
        let sort = self.sort;
        let next_href = self.tree.next_cursor.as_deref().map(|cursor| {
            let query =
                serde_urlencoded::to_string([("sort", sort_name(sort)), ("cursor", cursor)]).unwrap_or_default();
            format!("/p/{id}?{query}#comments")
        });
        let post = PostItem::new(self.post, now);
        PostPage {
            moderates: self.moderates,
            summary_box: crate::summaries::offered(&state.config.summaries, &self.community, post.comment_count),
            community: self.community,
            layout,
            sorts: comment_sort_tabs(id, sort),
            comments: flatten(self.tree.items, now),
            post,
            next_href,
            focus: None,
            reported: self.reported,
        }
    }
}

/// `GET /p/{id}/comments/{comment}`: "continue this thread" — one comment and its replies.
pub async fn continue_thread(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    path: web::Path<(i64, i64)>,
    params: web::Query<ThreadParams>,
) -> Result<HttpResponse, PageError> {
    let (post_id, comment_id) = path.into_inner();
    let sort = params.sort.unwrap_or_default();
    let post = posts::get_for(&state, PostId(post_id), viewer.auth).await?;
    let shape = TreeShape { sort, max_depth: PAGE_DEPTH };
    let subtree = comments::subtree_for(&state, CommentId(comment_id), shape, viewer.auth).await?;
    if subtree.post_id != post_id {
        return Err(AppError::not_found("comment").into());
    }
    let now = Utc::now();
    let post = PostItem::new(post, now);
    let community =
        crate::service::communities::get_for(&state, &crate::edge::names::community(&post.community)?, viewer.auth)
            .await?;
    let layout = layout(&state, &viewer).await?;
    let template = PostPage {
        moderates: crate::web::browse::moderates(&state, &viewer, &layout, &community).await?,
        summary_box: false,
        community,
        layout,
        sorts: Vec::new(),
        comments: flatten(vec![subtree], now),
        post,
        next_href: None,
        focus: Some(comment_id),
        reported: false,
    };
    render(&req, &template)
}

fn sort_name(sort: CommentSort) -> &'static str {
    match sort {
        CommentSort::Best => "best",
        CommentSort::Top => "top",
        CommentSort::New => "new",
        CommentSort::Old => "old",
    }
}

fn comment_sort_tabs(post_id: i64, current: CommentSort) -> Vec<Tab> {
    [(CommentSort::Best, "Best"), (CommentSort::Top, "Top"), (CommentSort::New, "New"), (CommentSort::Old, "Old")]
        .into_iter()
        .map(|(sort, label)| Tab {
            label,
            href: format!("/p/{post_id}?sort={}#comments", sort_name(sort)),
            current: sort == current,
        })
        .collect()
}

/// A reply form: to the post, or to a comment of it.
#[derive(Debug, Deserialize)]
pub struct ReplyForm {
    #[serde(default)]
    body: String,
    #[serde(default)]
    parent_id: String,
}

/// `POST /p/{id}/reply`
pub async fn reply(
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    form: CsrfForm<ReplyForm>,
) -> Result<HttpResponse, PageError> {
    let author = viewer.require()?;
    let form = form.0;
    let parent = match form.parent_id.trim() {
        "" => None,
        text => Some(CommentId(text.parse().map_err(|_| AppError::invalid_field("parent_id", "is not a comment id"))?)),
    };
    let body = Body::parse_comment(&form.body).map_err(|err| AppError::invalid_field("body", err.to_string()))?;
    let post_id = id.into_inner();
    let comment = comments::create(&state, author, PostId(post_id), parent, body).await?;
    Ok(see_other(&format!("/p/{post_id}#c{}", comment.id)))
}

/// A vote button's value.
#[derive(Debug, Deserialize)]
pub struct VoteForm {
    #[serde(default)]
    value: String,
}

fn parse_vote(form: &VoteForm) -> Result<VoteValue, PageError> {
    let value: i64 = form.value.trim().parse().map_err(|_| AppError::invalid_field("value", "must be -1, 0 or 1"))?;
    VoteValue::parse(value).map_err(|err| AppError::invalid_field("value", err.to_string()).into())
}

/// `POST /p/{id}/vote`: JSON for the script, a redirect back without it.
pub async fn vote_post(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    form: CsrfForm<VoteForm>,
) -> Result<HttpResponse, PageError> {
    let voter = viewer.require()?;
    let id = id.into_inner();
    let result = posts::vote(&state, voter, PostId(id), parse_vote(&form.0)?).await?;
    Ok(vote_answer(&req, &result, &format!("p{id}")))
}

/// `POST /comments/{id}/vote`
pub async fn vote_comment(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    form: CsrfForm<VoteForm>,
) -> Result<HttpResponse, PageError> {
    let voter = viewer.require()?;
    let id = id.into_inner();
    let result = comments::vote(&state, voter, CommentId(id), parse_vote(&form.0)?).await?;
    Ok(vote_answer(&req, &result, &format!("c{id}")))
}

fn vote_answer(req: &HttpRequest, result: &posts::VoteResult, anchor: &str) -> HttpResponse {
    let wants_json = req
        .headers()
        .get(actix_web::http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        return HttpResponse::Ok().json(result);
    }
    let back = crate::web::referer_path(req);
    let back = back.split('#').next().unwrap_or("/");
    see_other(&format!("{back}#{anchor}"))
}

#[derive(Template)]
#[template(path = "edit.html")]
struct EditPage {
    layout: Layout,
    action: String,
    cancel: String,
    heading: &'static str,
    title: Option<String>,
    body: String,
    error: Option<String>,
}

/// `GET /p/{id}/edit`: the author's edit form.
pub async fn edit_post_form(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let author = viewer.require()?;
    let post = posts::get(&state, PostId(*id), Some(author)).await?;
    let layout = layout(&state, &viewer).await?;
    if !layout.is(&post.view.author) || post.view.deleted {
        return Err(AppError::forbidden("only its author can edit this post").into());
    }
    let template = EditPage {
        layout,
        action: format!("/p/{}/edit", post.view.id),
        cancel: format!("/p/{}", post.view.id),
        heading: "Edit post",
        title: Some(post.view.title),
        body: post.view.body,
        error: None,
    };
    render(&req, &template)
}

/// The post edit form.
#[derive(Debug, Deserialize)]
pub struct PostEditForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
}

/// `POST /p/{id}/edit`
pub async fn edit_post(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    form: CsrfForm<PostEditForm>,
) -> Result<HttpResponse, PageError> {
    let author = viewer.require()?;
    let id = id.into_inner();
    let form = form.0;
    let edit = PostTitle::parse(&form.title)
        .map_err(|err| format!("Title {err}"))
        .and_then(|title| Body::parse_post(&form.body).map(|body| (title, body)).map_err(|err| format!("Text {err}")));
    let (title, body) = match edit {
        Ok(parsed) => parsed,
        Err(error) => {
            let template = EditPage {
                layout: layout(&state, &viewer).await?,
                action: format!("/p/{id}/edit"),
                cancel: format!("/p/{id}"),
                heading: "Edit post",
                title: Some(form.title),
                body: form.body,
                error: Some(error),
            };
            return crate::web::render_with_status(&req, &template, actix_web::http::StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    posts::edit(&state, author, PostId(id), PostEdit { title: Some(title), body: Some(body), ..PostEdit::default() })
        .await?;
    Ok(see_other(&format!("/p/{id}")))
}

/// A form with nothing but its CSRF token.
#[derive(Debug, Deserialize)]
pub struct EmptyForm {}

/// `POST /p/{id}/delete`: the author deletes their post.
pub async fn delete_post(
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    _form: CsrfForm<EmptyForm>,
) -> Result<HttpResponse, PageError> {
    let author = viewer.require()?;
    let id = id.into_inner();
    posts::delete(&state, author, PostId(id)).await?;
    Ok(see_other(&format!("/p/{id}")))
}

/// `GET /comments/{id}/edit`: the author's edit form.
pub async fn edit_comment_form(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let author = viewer.require()?;
    let comment = comments::one(&state, CommentId(*id), Some(author)).await?;
    let layout = layout(&state, &viewer).await?;
    if !layout.is(&comment.author) || comment.deleted || comment.removed {
        return Err(AppError::forbidden("only its author can edit this comment").into());
    }
    let template = EditPage {
        layout,
        action: format!("/comments/{}/edit", comment.id),
        cancel: format!("/p/{}#c{}", comment.post_id, comment.id),
        heading: "Edit comment",
        title: None,
        body: comment.body,
        error: None,
    };
    render(&req, &template)
}

/// The comment edit form.
#[derive(Debug, Deserialize)]
pub struct CommentEditForm {
    #[serde(default)]
    body: String,
}

/// `POST /comments/{id}/edit`
pub async fn edit_comment(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    form: CsrfForm<CommentEditForm>,
) -> Result<HttpResponse, PageError> {
    let author = viewer.require()?;
    let id = id.into_inner();
    let body = match Body::parse_comment(&form.0.body) {
        Ok(body) => body,
        Err(err) => {
            let template = EditPage {
                layout: layout(&state, &viewer).await?,
                action: format!("/comments/{id}/edit"),
                cancel: "/".into(),
                heading: "Edit comment",
                title: None,
                body: form.0.body,
                error: Some(format!("Text {err}")),
            };
            return crate::web::render_with_status(&req, &template, actix_web::http::StatusCode::UNPROCESSABLE_ENTITY);
        }
    };
    let comment = comments::edit(&state, author, CommentId(id), body).await?;
    Ok(see_other(&format!("/p/{}#c{}", comment.post_id, comment.id)))
}

/// `POST /comments/{id}/delete`: the author deletes their comment; replies stay.
pub async fn delete_comment(
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    _form: CsrfForm<EmptyForm>,
) -> Result<HttpResponse, PageError> {
    let author = viewer.require()?;
    let comment = comments::one(&state, CommentId(*id), Some(author)).await?;
    comments::delete(&state, author, CommentId(comment.id)).await?;
    Ok(see_other(&format!("/p/{}#c{}", comment.post_id, comment.id)))
}

#[derive(Template)]
#[template(path = "summary.html")]
struct SummaryPage {
    layout: Layout,
    post_id: i64,
    title: String,
    summary: Option<crate::summaries::SummaryView>,
}

/// `GET /p/{id}/summary`: the thread summary without JavaScript (the post page's box loads
/// the same thing in place).
pub async fn summary_page(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
) -> Result<HttpResponse, PageError> {
    let post = posts::get_for(&state, PostId(*id), viewer.auth).await?;
    let requester = crate::edge::caller::summary_requester(&req, &state.config.rate_limits, viewer.auth);
    let summary = match crate::summaries::get(&state, post.view.id, &requester).await? {
        crate::summaries::SummaryAnswer::Ready(view) => Some(view),
        crate::summaries::SummaryAnswer::Pending => None,
    };
    let template =
        SummaryPage { layout: layout(&state, &viewer).await?, post_id: post.view.id, title: post.view.title, summary };
    render(&req, &template)
}
