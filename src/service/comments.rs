//! Comment use cases: reply, read a post's tree or one subtree, edit, delete, vote.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::db::comments::{self as db_comments, CommentCursor, CommentRow, InsertCommentError};
use crate::db::communities as db_communities;
use crate::db::posts as db_posts;
use crate::domain::CommunityId;
use crate::domain::content::{decode_cursor, encode_cursor};
use crate::domain::{Body, CommentId, CommentSort, Limit, PostId, VoteValue};
use crate::error::{AppError, ErrorCode};
use crate::service::Context;
use crate::service::accounts::Authenticated;
use crate::service::cache::{Change, Entry, Key, Marks, Served, Source};
use crate::service::cache_sync;
use crate::service::communities::trim_to_page;
use crate::service::communities::{banned, forbidden};
use crate::service::posts::VoteResult;
use crate::service::viewer::ViewerPrefs;

/// The API's `comment` object with the part of its subtree that was asked for.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Comment {
    /// Id.
    pub id: i64,
    /// Post.
    pub post_id: i64,
    /// Parent comment, `null` at the top level.
    pub parent_id: Option<i64>,
    /// 0 for top level.
    pub depth: i32,
    /// Author username.
    pub author: String,
    /// The author's avatar (a path on this server), when they have one.
    pub author_avatar_url: Option<String>,
    /// Markdown (blank once deleted or removed).
    pub body: String,
    /// Sanitized HTML.
    pub body_html: String,
    /// Upvotes minus downvotes.
    pub score: i32,
    /// Upvotes.
    pub upvotes: i32,
    /// Downvotes.
    pub downvotes: i32,
    /// The reader's vote.
    pub my_vote: i16,
    /// Saved by the reader.
    pub saved: bool,
    /// Written by someone the reader blocks: the body is blanked (replies stay, so the thread
    /// still reads).
    pub blocked: bool,
    /// Creation time.
    pub created_at: DateTime<Utc>,
    /// Last edit.
    pub edited_at: Option<DateTime<Utc>>,
    /// Deleted by its author.
    pub deleted: bool,
    /// Removed by a moderator.
    pub removed: bool,
    /// Replies included in this answer, sorted.
    #[schema(no_recursion)]
    pub children: Vec<Comment>,
    /// Replies not included (cut by `max_depth`): "continue this thread".
    pub more_children: i32,
}

/// A page of a post's comment tree.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[schema(as = CommentTree)]
pub struct Tree {
    /// Top-level comments with their subtrees.
    pub items: Vec<Comment>,
    /// Where the next page of top-level comments starts.
    pub next_cursor: Option<String>,
}

/// How much of a tree to return.
#[derive(Debug, Clone, Copy)]
pub struct TreeShape {
    /// Order at every level.
    pub sort: CommentSort,
    /// Levels below the listed comments (0..=50).
    pub max_depth: i32,
}

fn reader_id(reader: Option<Authenticated>) -> i64 {
    reader.map_or(0, |r| r.user_id.0)
}

/// Replies to a post, or to a comment of it. Locked posts, banned users and threads deeper
/// than the configured cap are refused.
#[tracing::instrument(name = "service.comments.create", skip_all, fields(post_id = post.0))]
pub async fn create(
    ctx: &Context,
    author: Authenticated,
    post: PostId,
    parent: Option<CommentId>,
    body: Body,
) -> Result<Comment, AppError> {
    let max_depth = ctx.config.limits.max_comment_depth;
    let body_html = crate::markdown::render(body.as_str());
    let body_text = body.as_str().to_owned();
    let mentioned = crate::service::notifications::mentions(&body_text);
    let excerpt = crate::service::inbox::excerpt(&body_text);
    let mut conn = ctx.db.conn().await?;
    let work = ctx.db.transaction::<_, AppError>("comments.create", &mut conn, async move |conn| {
        let facts = db_posts::facts(conn, post, false).await?.ok_or_else(|| AppError::not_found("post"))?;
        if facts.locked || facts.deleted || facts.removed {
            return Err(AppError::new(ErrorCode::Locked, "this post is locked: no new comments"));
        }
        if db_communities::is_banned(conn, CommunityId(facts.community_id), author.user_id).await? {
            return Err(banned());
        }
        if let Some(parent) = parent {
            let depth = db_comments::depth_in_post(conn, CommentId(parent.0), post)
                .await?
                .ok_or_else(|| AppError::invalid_field("parent_id", "is not a comment of this post"))?;
            if depth + 1 > max_depth {
                return Err(AppError::new(
                    ErrorCode::MaxDepthExceeded,
                    format!("replies cannot go deeper than {max_depth} levels"),
                ));
            }
        }
        let id = db_comments::insert(conn, post, parent.map(|p| p.0), author.user_id, body.as_str(), &body_html)
            .await
            .map_err(|err| match err {
                InsertCommentError::ParentNotInPost => {
                    AppError::invalid_field("parent_id", "is not a comment of this post")
                }
                InsertCommentError::Other(source) => AppError::from(source),
            })?;
        let notified = crate::db::inbox::add_for_comment(conn, id, author.user_id, &mentioned, &excerpt).await?;
        Ok((id, notified))
    });
    let (id, notified) = work.await?;
    ctx.metrics.comments_created.inc();
    crate::service::inbox::count_added(ctx, notified.iter().map(|(_, kind)| kind));
    let recipients: Vec<i64> = notified.iter().map(|(user, _)| *user).collect();
    let mut changes = vec![Change::Thread(post.0), Change::Post(post.0)];
    changes.extend(crate::service::inbox::changes_for(&recipients));
    cache_sync::committed(ctx, &mut conn, author.user_id, &changes).await;
    crate::service::notifications::after_comment(ctx, id, &notified).await;
    let row = ctx
        .db
        .observe("comments.row_by_id", &mut conn, async |conn| {
            db_comments::row_by_id(conn, author.user_id.0, CommentId(id)).await
        })
        .await?;
    let row = row.ok_or_else(|| AppError::not_found("comment"))?;
    Ok(build(vec![row], Vec::new(), TreeShape { sort: CommentSort::New, max_depth: 0 }).remove(0))
}

/// A page of a post's top-level comments with their replies down to `shape.max_depth` levels,
/// in two queries however large the thread.
/// As an anonymous reader sees it: what [`tree_cached`] stores.
#[tracing::instrument(name = "service.comments.tree", skip_all, fields(post_id = post.0))]
async fn tree(
    ctx: &Context,
    post: PostId,
    shape: TreeShape,
    limit: Limit,
    cursor: Option<&str>,
) -> Result<Tree, AppError> {
    let after: Option<CommentCursor> =
        cursor.map(decode_cursor).transpose().map_err(|err| AppError::invalid_field("cursor", err.to_string()))?;
    if after.is_some_and(|a| a.sort() != shape.sort) {
        return Err(AppError::invalid_field("cursor", "belongs to another sort"));
    }
    let reader = 0;
    let mut conn = ctx.shared_read_conn().await?;
    let facts =
        ctx.db.observe_read("posts.facts", &mut conn, async |conn| db_posts::facts(conn, post, false).await).await?;
    if facts.is_none() {
        return Err(AppError::not_found("post"));
    }
    let mut roots = ctx
        .db
        .observe_read("comments.top_level", &mut conn, async |conn| {
            db_comments::top_level(conn, reader, post, shape.sort, after, limit.get() + 1).await
        })
        .await?;
    let next_cursor =
        trim_to_page(&mut roots, limit.get()).map(|last| encode_cursor(&CommentCursor::after(shape.sort, last)));
    let descendants = if shape.max_depth > 0 && !roots.is_empty() {
        let ids: Vec<i64> = roots.iter().map(|r| r.id).collect();
        ctx.db
            .observe_read("comments.descendants", &mut conn, async |conn| {
                db_comments::descendants_of_roots(conn, reader, post, &ids, shape.max_depth).await
            })
            .await?
    } else {
        Vec::new()
    };
    Ok(Tree { items: build(roots, descendants, shape), next_cursor })
}

/// One comment with its replies down to `shape.max_depth` levels: "continue this thread".
#[tracing::instrument(name = "service.comments.subtree", skip_all, fields(comment_id = id.0))]
pub async fn subtree(
    ctx: &Context,
    id: CommentId,
    shape: TreeShape,
    reader: Option<Authenticated>,
) -> Result<Comment, AppError> {
    let mut conn = match reader {
        Some(reader) => ctx.reader_read_conn(reader.user_id).await?,
        None => ctx.shared_read_conn().await?,
    };
    let reader = reader_id(reader);
    let root = ctx
        .db
        .observe_read("comments.row_by_id", &mut conn, async |conn| db_comments::row_by_id(conn, reader, id).await)
        .await?;
    let root = root.ok_or_else(|| AppError::not_found("comment"))?;
    let descendants = if shape.max_depth > 0 {
        let deepest = root.depth.saturating_add(shape.max_depth);
        ctx.db
            .observe_read("comments.subtree", &mut conn, async |conn| {
                db_comments::subtree(conn, reader, &root, deepest).await
            })
            .await?
    } else {
        Vec::new()
    };
    let root_depth = root.depth;
    let relative = TreeShape { sort: shape.sort, max_depth: root_depth + shape.max_depth };
    Ok(build(vec![root], descendants, relative).remove(0))
}

/// A page of a post's tree through the response cache: the shared page (filled as an
/// anonymous reader sees it) and, for a signed-in reader, their votes on the post's comments.
pub async fn tree_cached(
    ctx: &Context,
    post: PostId,
    shape: TreeShape,
    limit: Limit,
    cursor: Option<&str>,
    reader: Option<Authenticated>,
) -> Result<Served, AppError> {
    let key = Key::Tree {
        post: post.0,
        sort: shape.sort,
        depth: shape.max_depth,
        limit: limit.get(),
        cursor: cursor.map(Into::into),
    };
    let cached = ctx
        .caches
        .responses
        .get_or_fill(key.clone(), async {
            let tree = tree(ctx, post, shape, limit, cursor).await?;
            let ids = depth_first_ids(&tree.items);
            Entry::json(tree, ids)
        })
        .await?;
    with_comment_marks(ctx, cached, reader, post, key).await
}

/// One comment with its replies through the response cache (see [`tree_cached`]).
pub async fn subtree_cached(
    ctx: &Context,
    id: CommentId,
    shape: TreeShape,
    reader: Option<Authenticated>,
) -> Result<Served, AppError> {
    let key = Key::Subtree { comment: id.0, sort: shape.sort, depth: shape.max_depth };
    let cached = ctx
        .caches
        .responses
        .get_or_fill(key.clone(), async {
            let comment = subtree(ctx, id, shape, None).await?;
            let ids = depth_first_ids(std::slice::from_ref(&comment));
            Entry::json(comment, ids)
        })
        .await?;
    let post = cached.entry.data::<Comment>().map_or(0, |comment| comment.post_id);
    with_comment_marks(ctx, cached, reader, PostId(post), key).await
}

/// A page of a post's tree as `reader` sees it, from the cache (for pages).
pub async fn tree_for(
    ctx: &Context,
    post: PostId,
    shape: TreeShape,
    limit: Limit,
    cursor: Option<&str>,
    reader: Option<Authenticated>,
) -> Result<Tree, AppError> {
    let served = tree_cached(ctx, post, shape, limit, cursor, reader).await?;
    let mut tree = served.data::<Tree>().cloned().ok_or_else(|| AppError::not_found("post"))?;
    set_my_votes(&mut tree.items, &served);
    Ok(tree)
}

/// One comment with its replies as `reader` sees it, from the cache (for pages).
pub async fn subtree_for(
    ctx: &Context,
    id: CommentId,
    shape: TreeShape,
    reader: Option<Authenticated>,
) -> Result<Comment, AppError> {
    let served = subtree_cached(ctx, id, shape, reader).await?;
    let mut comment = served.data::<Comment>().cloned().ok_or_else(|| AppError::not_found("comment"))?;
    set_my_votes(std::slice::from_mut(&mut comment), &served);
    Ok(comment)
}

fn set_my_votes(comments: &mut [Comment], served: &Served) {
    for comment in comments {
        comment.my_vote = served.my_vote(comment.id);
        set_my_votes(&mut comment.children, served);
    }
}

/// The ids of `comments` and their replies in the order they serialize.
fn depth_first_ids(comments: &[Comment]) -> Vec<i64> {
    fn walk(comments: &[Comment], ids: &mut Vec<i64>) {
        for comment in comments {
            ids.push(comment.id);
            walk(&comment.children, ids);
        }
    }
    let mut ids = Vec::new();
    walk(comments, &mut ids);
    ids
}

/// Adds a signed-in reader's marks on the post's comments (a cached overlay, invalidated by
/// their own votes and saves), then their blocks.
async fn with_comment_marks(
    ctx: &Context,
    cached: crate::service::cache::Cached,
    reader: Option<Authenticated>,
    post: PostId,
    of: Key,
) -> Result<Served, AppError> {
    let Some(reader) = reader else { return Ok(Served::shared(cached)) };
    let key = Key::CommentMarks { viewer: reader.user_id.0, post: post.0 };
    let overlay = ctx
        .caches
        .responses
        .get_or_fill(key, async {
            let mut conn = ctx.reader_read_conn(reader.user_id).await?;
            let rows = ctx
                .db
                .observe_read("reader.comment_marks", &mut conn, async |conn| {
                    crate::db::reader::comment_marks(conn, reader.user_id, post.0).await
                })
                .await?;
            let mut marks = Marks::default();
            for row in rows {
                if row.saved {
                    marks.saved.insert(row.id);
                } else if row.vote != 0 {
                    marks.votes.insert(row.id, row.vote);
                }
            }
            let bytes = marks.weight();
            Ok(crate::service::cache::Entry::value(marks, bytes))
        })
        .await?;
    tree_for_reader(ctx, Served::with_overlay(cached, overlay), reader, of).await
}

/// Comments shown on their own (a profile's list): no replies attached.
pub fn without_replies(rows: Vec<CommentRow>) -> Vec<Comment> {
    rows.into_iter()
        .map(|row| {
            let shape = TreeShape { sort: CommentSort::New, max_depth: row.depth };
            assemble(row, &mut HashMap::new(), shape)
        })
        .collect()
}

/// One comment without its replies.
pub async fn one(ctx: &Context, id: CommentId, reader: Option<Authenticated>) -> Result<Comment, AppError> {
    subtree(ctx, id, TreeShape { sort: CommentSort::Best, max_depth: 0 }, reader).await
}

/// Assembles rows into trees, sorting every level, and counts what `max_depth` cut.
fn build(roots: Vec<CommentRow>, descendants: Vec<CommentRow>, shape: TreeShape) -> Vec<Comment> {
    let mut children: HashMap<i64, Vec<CommentRow>> = HashMap::new();
    for row in descendants {
        if let Some(parent) = row.parent_id {
            children.entry(parent).or_default().push(row);
        }
    }
    for siblings in children.values_mut() {
        siblings.sort_by(|a, b| compare(shape.sort, a, b));
    }
    roots.into_iter().map(|root| assemble(root, &mut children, shape)).collect()
}

fn assemble(row: CommentRow, children: &mut HashMap<i64, Vec<CommentRow>>, shape: TreeShape) -> Comment {
    let kids: Vec<Comment> = if row.depth < shape.max_depth {
        children.remove(&row.id).unwrap_or_default().into_iter().map(|c| assemble(c, children, shape)).collect()
    } else {
        Vec::new()
    };
    let more_children = row.reply_count - kids.len() as i32;
    Comment {
        id: row.id,
        post_id: row.post_id,
        parent_id: row.parent_id,
        depth: row.depth,
        author: row.author,
        author_avatar_url: row.author_avatar_url,
        body: row.body,
        body_html: row.body_html,
        score: row.score,
        upvotes: row.upvotes,
        downvotes: row.downvotes,
        my_vote: row.my_vote,
        saved: row.saved,
        blocked: false,
        created_at: row.created_at,
        edited_at: row.edited_at,
        deleted: row.deleted,
        removed: row.removed,
        children: kids,
        more_children: more_children.max(0),
    }
}

fn compare(sort: CommentSort, a: &CommentRow, b: &CommentRow) -> Ordering {
    match sort {
        CommentSort::Best => b.wilson_score.total_cmp(&a.wilson_score).then(b.id.cmp(&a.id)),
        CommentSort::Top => b.score.cmp(&a.score).then(b.id.cmp(&a.id)),
        CommentSort::New => b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)),
        CommentSort::Old => a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)),
    }
}

/// Edits the author's own comment.
#[tracing::instrument(name = "service.comments.edit", skip_all, fields(comment_id = id.0))]
pub async fn edit(ctx: &Context, editor: Authenticated, id: CommentId, body: Body) -> Result<Comment, AppError> {
    let mut conn = ctx.db.conn().await?;
    let facts =
        ctx.db.observe("comments.facts", &mut conn, async |conn| db_comments::facts(conn, id, false).await).await?;
    let facts = facts.ok_or_else(|| AppError::not_found("comment"))?;
    if facts.author_id != editor.user_id.0 {
        return Err(forbidden("only the author can edit a comment"));
    }
    if facts.deleted {
        return Err(forbidden("a deleted comment cannot be edited"));
    }
    let html = crate::markdown::render(body.as_str());
    ctx.db
        .observe("comments.edit", &mut conn, async |conn| db_comments::edit(conn, id, body.as_str(), &html).await)
        .await?;
    cache_sync::committed(ctx, &mut conn, editor.user_id, &[Change::Thread(facts.post_id)]).await;
    one(ctx, id, Some(editor)).await
}

/// Deletes the author's own comment: blanked, `deleted: true`, replies kept.
#[tracing::instrument(name = "service.comments.delete", skip_all, fields(comment_id = id.0))]
pub async fn delete(ctx: &Context, author: Authenticated, id: CommentId) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    let facts =
        ctx.db.observe("comments.facts", &mut conn, async |conn| db_comments::facts(conn, id, false).await).await?;
    let facts = facts.ok_or_else(|| AppError::not_found("comment"))?;
    if facts.author_id != author.user_id.0 {
        return Err(forbidden("only the author can delete a comment"));
    }
    ctx.db.observe("comments.delete", &mut conn, async |conn| db_comments::delete(conn, id).await).await?;
    cache_sync::committed(ctx, &mut conn, author.user_id, &[Change::Thread(facts.post_id)]).await;
    Ok(())
}

/// Votes on a comment, in one statement like a post vote (see `db::posts::vote_comment`).
#[tracing::instrument(name = "service.comments.vote", skip_all, fields(comment_id = id.0, value = value.get()))]
pub async fn vote(
    ctx: &Context,
    voter: Authenticated,
    id: CommentId,
    value: VoteValue,
) -> Result<VoteResult, AppError> {
    // The post is known only once the statement ran: `{post}` stands for it.
    let notify = ctx
        .caches
        .peers_listening
        .load(std::sync::atomic::Ordering::Acquire)
        .then(|| format!("{} thread:{{post}} profiles viewer:{}", ctx.caches.origin, voter.user_id.0));
    let mut conn = ctx.db.conn().await?;
    let (post, outcome) = ctx
        .db
        .observe("comments.vote", &mut conn, async |conn| {
            db_posts::vote_comment(conn, id, voter.user_id, value.get(), notify.as_deref()).await
        })
        .await?;
    let (tally, changed) = crate::service::posts::counted(outcome, "comment")?;
    if changed {
        let changes =
            [Change::Thread(post), Change::Profiles, Change::Viewer(voter.user_id.0), Change::Wrote(voter.user_id.0)];
        ctx.caches.responses.apply(&changes, Source::Local);
    }
    ctx.metrics.votes.with_label_values(&["comment"]).inc();
    Ok(VoteResult { score: tally.score, upvotes: tally.upvotes, downvotes: tally.downvotes, my_vote: value.get() })
}

/// A comment tree (a page, or one subtree, cached under `of`) as `reader` sees it: comments
/// by users they block blanked and marked `blocked`, their votes and saves marked; made once
/// per change and cached for them.
async fn tree_for_reader(ctx: &Context, served: Served, reader: Authenticated, of: Key) -> Result<Served, AppError> {
    let prefs = crate::service::viewer::viewer_prefs(ctx, reader.user_id).await?;
    let marks = served.marks().cloned().unwrap_or_default();
    if marks.saved.is_empty() && prefs.blocked_users.is_empty() {
        return Ok(served);
    }
    let shared = served.entry.clone();
    let key = Key::ForReader { viewer: reader.user_id.0, of: Box::new(of) };
    let made = ctx
        .caches
        .responses
        .get_or_fill(key, async {
            // A page of a tree, or one subtree: the same marking over their comments.
            if let Some(tree) = shared.data::<Tree>() {
                if !touches(&tree.items, &prefs, &marks.saved) {
                    return Ok(Entry::unchanged());
                }
                let mut tree = tree.clone();
                mark_comments(&mut tree.items, &prefs, &marks);
                return Entry::json(tree, Vec::new());
            }
            match shared.data::<Comment>() {
                Some(comment) if touches(std::slice::from_ref(comment), &prefs, &marks.saved) => {
                    let mut comment = comment.clone();
                    mark_comments(std::slice::from_mut(&mut comment), &prefs, &marks);
                    Entry::json(comment, Vec::new())
                }
                _ => Ok(Entry::unchanged()),
            }
        })
        .await?;
    Ok(served.for_reader(made))
}

fn touches(comments: &[Comment], prefs: &ViewerPrefs, saved: &HashSet<i64>) -> bool {
    comments.iter().any(|comment| {
        saved.contains(&comment.id)
            || prefs.blocked_users.contains(&comment.author.to_lowercase())
            || touches(&comment.children, prefs, saved)
    })
}

fn mark_comments(comments: &mut [Comment], prefs: &ViewerPrefs, marks: &Marks) {
    for comment in comments {
        comment.my_vote = marks.votes.get(&comment.id).copied().unwrap_or(0);
        comment.saved = marks.saved.contains(&comment.id);
        if prefs.blocked_users.contains(&comment.author.to_lowercase()) {
            comment.blocked = true;
            comment.body.clear();
            comment.body_html.clear();
        }
        mark_comments(&mut comment.children, prefs, marks);
    }
}
