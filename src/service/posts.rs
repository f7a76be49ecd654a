//! Post use cases: read, list by every sort, search, create, edit, delete, vote.

use chrono::Utc;
use serde::Serialize;

use crate::db::DbConn;
use crate::db::communities as db_communities;
pub use crate::db::posts::PostView;
use crate::db::posts::{self as db_posts, ListingQuery, NewPost, PostCursor, Tally, VoteOutcome};
use crate::domain::CommunityId;
use crate::domain::content::{decode_cursor, encode_cursor, hot_rank};
use crate::domain::{Body, CommunityName, Limit, LinkUrl, PostId, PostSort, PostTitle, TimeWindow, VoteValue};
use crate::error::AppError;
use crate::service::Context;
use crate::service::accounts::Authenticated;
use crate::service::cache::{Cached, Change, Entry, Key, Marks, Served, Source};
use crate::service::cache_sync;
use crate::service::communities::{Page, banned, find_id, forbidden, trim_to_page};

/// The API's `post` object: the stored view plus its image.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Post {
    /// Everything stored about the post, for this reader.
    #[serde(flatten)]
    pub view: PostView,
    /// The post's image, when it has a ready one (and is not removed).
    pub image: Option<PostImage>,
}

/// A post's image.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct PostImage {
    /// The upload's id.
    pub id: i64,
    /// Width of the full-size image.
    pub width: i32,
    /// Height of the full-size image.
    pub height: i32,
    /// The image and its thumbnails (paths on this server).
    pub urls: crate::domain::media::ImageUrls,
}

impl From<PostView> for Post {
    fn from(view: PostView) -> Self {
        let image = match (view.image_id, view.image_width, view.image_height, &view.image_hash) {
            (Some(id), Some(width), Some(height), Some(hash)) => {
                let widths: Vec<u32> =
                    view.image_widths.iter().flatten().filter_map(|w| u32::try_from(*w).ok()).collect();
                Some(PostImage { id, width, height, urls: crate::domain::media::ImageUrls::of(hash, &widths) })
            }
            _ => None,
        };
        Self { view, image }
    }
}

/// A validated new post.
#[derive(Debug, Clone)]
pub struct NewPostInput {
    /// Title.
    pub title: PostTitle,
    /// Markdown body (may be empty).
    pub body: Body,
    /// Link, for link posts.
    pub url: Option<LinkUrl>,
    /// An upload of the author's to show (it must be ready).
    pub image_id: Option<i64>,
    /// Not safe for work.
    pub nsfw: bool,
    /// A spoiler.
    pub spoiler: bool,
}

/// A validated post edit.
#[derive(Debug, Clone, Default)]
pub struct PostEdit {
    /// New title.
    pub title: Option<PostTitle>,
    /// New body.
    pub body: Option<Body>,
    /// New NSFW flag.
    pub nsfw: Option<bool>,
    /// New spoiler flag.
    pub spoiler: Option<bool>,
}

/// A listing request.
#[derive(Debug, Clone)]
pub struct ListRequest {
    /// Only this community.
    pub community: Option<CommunityName>,
    /// Sort.
    pub sort: PostSort,
    /// Window of `top` and `controversial`.
    pub window: TimeWindow,
    /// Page size.
    pub limit: Limit,
    /// Opaque cursor from a previous page.
    pub cursor: Option<String>,
    /// Only the communities this reader joined (their home feed).
    pub feed_of: Option<Authenticated>,
}

fn reader_id(reader: Option<Authenticated>) -> i64 {
    reader.map_or(0, |r| r.user_id.0)
}

fn bad_cursor() -> AppError {
    AppError::invalid_field("cursor", "is not a cursor from this listing")
}

/// One post as `reader` sees it.
#[tracing::instrument(name = "service.posts.get", skip_all, fields(post_id = id.0))]
pub async fn get(ctx: &Context, id: PostId, reader: Option<Authenticated>) -> Result<Post, AppError> {
    let mut conn = ctx.db.conn().await?;
    view(ctx, &mut conn, id.0, reader_id(reader)).await.map(Post::from)
}

pub(crate) async fn view(ctx: &Context, conn: &mut DbConn, id: i64, reader: i64) -> Result<PostView, AppError> {
    ctx.db
        .observe_read("posts.view_by_id", conn, async |conn| db_posts::view_by_id(conn, PostId(id), reader).await)
        .await?
        .ok_or_else(|| AppError::not_found("post"))
}

/// A page of posts as an anonymous reader sees it (what [`list_cached`] stores): across all
/// communities or one (pinned posts first on its first page).
#[tracing::instrument(name = "service.posts.list", skip_all, fields(sort = ?request.sort))]
async fn list(ctx: &Context, request: ListRequest) -> Result<Page<Post>, AppError> {
    let sort = cursor_kind(request.sort);
    let after: Option<PostCursor> =
        request.cursor.as_deref().map(decode_cursor).transpose().map_err(|_| bad_cursor())?;
    if after.is_some_and(|a| std::mem::discriminant(&a) != std::mem::discriminant(&sort)) {
        return Err(bad_cursor());
    }
    // A feed reads the reader's memberships: a replica must hold their last write.
    let mut conn = match request.feed_of {
        Some(reader) => ctx.reader_read_conn(reader.user_id).await?,
        None => ctx.shared_read_conn().await?,
    };
    let community_id = match &request.community {
        Some(name) => Some(find_id(ctx, &mut conn, name).await?),
        None => None,
    };
    let member_of = match request.feed_of {
        Some(reader) => {
            let (joined, joined_posts, all_posts) = ctx
                .db
                .observe_read("communities.feed_shape", &mut conn, async |conn| {
                    db_communities::feed_shape(conn, reader.user_id).await
                })
                .await?;
            Some((reader.user_id.0, db_posts::merges_feed(joined, joined_posts, all_posts)))
        }
        None => None,
    };
    let windowed = matches!(request.sort, PostSort::Top | PostSort::Controversial);
    let listing = ListingQuery {
        reader: 0,
        community_id,
        member_of,
        since: if windowed { request.window.duration().map(|d| Utc::now() - d) } else { None },
        sort,
        after,
        exclude_pinned: community_id.is_some(),
        limit: request.limit.get() + 1,
    };
    let mut rows = ctx
        .db
        .observe_read(listing_query_name(request.sort), &mut conn, async |conn| db_posts::list(conn, &listing).await)
        .await?;
    let next_cursor = trim_to_page(&mut rows, request.limit.get()).map(|last| encode_cursor(&sort.after(last)));
    let mut items = Vec::with_capacity(rows.len() + 2);
    if let (Some(community_id), None) = (community_id, after) {
        let pinned = ctx
            .db
            .observe_read("posts.pinned", &mut conn, async |conn| {
                db_posts::pinned(conn, CommunityId(community_id), listing.reader).await
            })
            .await?;
        items.extend(pinned.into_iter().map(Post::from));
    }
    items.extend(rows.into_iter().map(Post::from));
    Ok(Page { items, next_cursor })
}

/// The keyset cursor of listings in `sort`.
fn cursor_kind(sort: PostSort) -> PostCursor {
    match sort {
        PostSort::Hot => PostCursor::Hot(0.0, 0),
        PostSort::New => PostCursor::New(0, 0),
        PostSort::Top => PostCursor::Top(0, 0),
        PostSort::Controversial => PostCursor::Controversial(0.0, 0),
        PostSort::Active => PostCursor::Active(0, 0),
    }
}

/// The cursor of a listing in `sort` that continues after `post`.
pub(crate) fn cursor_after(sort: PostSort, post: &Post) -> String {
    encode_cursor(&cursor_kind(sort).after(&post.view))
}

/// A listing page through the response cache: the shared page (filled as an anonymous reader
/// sees it) and, for a signed-in reader, their marks on the posts shown (one cached overlay)
/// and their filters (see [`crate::service::reader::for_reader`]).
pub async fn list_cached(
    ctx: &Context,
    request: ListRequest,
    reader: Option<Authenticated>,
) -> Result<Served, AppError> {
    let cached = shared_listing(ctx, &request).await?;
    let served = with_post_marks(ctx, cached, reader).await?;
    match reader {
        Some(reader) => for_reader(ctx, served, reader, listing_key(&request), Some(&request)).await,
        None => Ok(served),
    }
}

/// The shared page of a listing (as an anonymous reader sees it), through the cache.
pub(crate) async fn shared_listing(ctx: &Context, request: &ListRequest) -> Result<Cached, AppError> {
    let key = listing_key(request);
    ctx.caches.responses.get_or_fill(key, async { page_entry(list(ctx, request.clone()).await?) }).await
}

/// The cache key of a listing's shared page.
fn listing_key(request: &ListRequest) -> Key {
    match request.feed_of {
        Some(reader) => Key::Feed {
            viewer: reader.user_id.0,
            sort: request.sort,
            window: request.window,
            limit: request.limit.get(),
            cursor: request.cursor.as_deref().map(Into::into),
        },
        None => Key::Listing {
            community: request.community.as_ref().map(|name| name.as_str().to_lowercase().into()),
            sort: request.sort,
            window: request.window,
            limit: request.limit.get(),
            cursor: request.cursor.as_deref().map(Into::into),
        },
    }
}

/// One post through the response cache (see [`list_cached`]).
pub async fn get_cached(ctx: &Context, id: PostId, reader: Option<Authenticated>) -> Result<Served, AppError> {
    let cached = ctx
        .caches
        .responses
        .get_or_fill(Key::Post(id.0), async {
            let mut conn = ctx.shared_read_conn().await?;
            Entry::json(Post::from(view(ctx, &mut conn, id.0, 0).await?), vec![id.0])
        })
        .await?;
    let served = with_post_marks(ctx, cached, reader).await?;
    match reader {
        Some(reader) => post_for_reader(ctx, served, reader).await,
        None => Ok(served),
    }
}

/// One post as `reader` sees it, from the cache (for pages, which render the value).
pub async fn get_for(ctx: &Context, id: PostId, reader: Option<Authenticated>) -> Result<Post, AppError> {
    let served = get_cached(ctx, id, reader).await?;
    let mut post = served.data::<Post>().cloned().ok_or_else(|| AppError::not_found("post"))?;
    post.view.my_vote = served.my_vote(post.view.id);
    Ok(post)
}

/// A page of search results through the response cache (see [`list_cached`]).
pub async fn search_cached(
    ctx: &Context,
    terms: &str,
    community: Option<&CommunityName>,
    limit: Limit,
    cursor: Option<&str>,
    reader: Option<Authenticated>,
) -> Result<Served, AppError> {
    let key = Key::Search {
        terms: terms.into(),
        community: community.map(|name| name.as_str().to_lowercase().into()),
        limit: limit.get(),
        cursor: cursor.map(Into::into),
    };
    let cached = ctx
        .caches
        .responses
        .get_or_fill(key.clone(), async { page_entry(search(ctx, terms, community, limit, cursor).await?) })
        .await?;
    let served = with_post_marks(ctx, cached, reader).await?;
    match reader {
        Some(reader) => for_reader(ctx, served, reader, key, None).await,
        None => Ok(served),
    }
}

/// A cache entry for a page of posts; each post carries the reader's vote.
fn page_entry(page: Page<Post>) -> Result<Entry, AppError> {
    let ids = page.items.iter().map(|post| post.view.id).collect();
    Entry::json(page, ids)
}

/// Adds a signed-in reader's marks on the posts of `cached` (a cached overlay, invalidated by
/// their own votes, saves and hides).
async fn with_post_marks(ctx: &Context, cached: Cached, reader: Option<Authenticated>) -> Result<Served, AppError> {
    let ids = cached.entry.voted_ids();
    let Some(reader) = reader.filter(|_| !ids.is_empty()) else { return Ok(Served::shared(cached)) };
    let overlay = post_marks(ctx, reader, ids).await?;
    Ok(Served::with_overlay(cached, overlay))
}

/// The reader's marks on the given posts (one query, cached by the ids).
pub(crate) async fn post_marks(ctx: &Context, reader: Authenticated, ids: Vec<i64>) -> Result<Cached, AppError> {
    let key = Key::PostMarks { viewer: reader.user_id.0, posts: ids.clone().into() };
    ctx.caches
        .responses
        .get_or_fill(key, async {
            let mut conn = ctx.reader_read_conn(reader.user_id).await?;
            let rows = ctx
                .db
                .observe_read("reader.post_marks", &mut conn, async |conn| {
                    crate::db::reader::post_marks(conn, reader.user_id, &ids).await
                })
                .await?;
            let mut marks = Marks::default();
            for row in rows {
                if row.vote != 0 {
                    marks.votes.insert(row.id, row.vote);
                }
                if row.saved {
                    marks.saved.insert(row.id);
                }
                if row.hidden {
                    marks.hidden.insert(row.id);
                }
            }
            let bytes = marks.weight() + ids.len() * 8;
            Ok(Entry::value(marks, bytes))
        })
        .await
}

fn listing_query_name(sort: PostSort) -> &'static str {
    match sort {
        PostSort::Hot => "posts.list_hot",
        PostSort::New => "posts.list_new",
        PostSort::Top => "posts.list_top",
        PostSort::Controversial => "posts.list_controversial",
        PostSort::Active => "posts.list_active",
    }
}

/// Full-text search, best match first, as an anonymous reader sees it (what
/// [`search_cached`] stores).
#[tracing::instrument(name = "service.posts.search", skip_all)]
async fn search(
    ctx: &Context,
    terms: &str,
    community: Option<&CommunityName>,
    limit: Limit,
    cursor: Option<&str>,
) -> Result<Page<Post>, AppError> {
    if terms.is_empty() || terms.chars().count() > 200 || terms.contains('\0') {
        return Err(AppError::invalid_field("q", "must be 1 to 200 characters"));
    }
    let after = match cursor.map(decode_cursor::<PostCursor>).transpose().map_err(|_| bad_cursor())? {
        Some(PostCursor::Rank(value, id)) => Some((value, id)),
        Some(_) => return Err(bad_cursor()),
        None => None,
    };
    let mut conn = ctx.shared_read_conn().await?;
    let community_id = match community {
        Some(name) => Some(find_id(ctx, &mut conn, name).await?),
        None => None,
    };
    let mut rows = ctx
        .db
        .observe_read("posts.search", &mut conn, async |conn| {
            db_posts::search(conn, 0, terms, community_id, after, limit.get() + 1).await
        })
        .await?;
    let next_cursor =
        trim_to_page(&mut rows, limit.get()).map(|last| encode_cursor(&PostCursor::Rank(last.rank, last.id)));
    Ok(Page { items: rows.into_iter().map(Post::from).collect(), next_cursor })
}

/// Creates a post in a community; banned users cannot.
#[tracing::instrument(name = "service.posts.create", skip_all, fields(community))]
pub async fn create(
    ctx: &Context,
    author: Authenticated,
    community: &CommunityName,
    input: NewPostInput,
) -> Result<Post, AppError> {
    let mut conn = ctx.db.conn().await?;
    let community_id = find_id(ctx, &mut conn, community).await?;
    let is_banned = ctx
        .db
        .observe("communities.is_banned", &mut conn, async |conn| {
            db_communities::is_banned(conn, CommunityId(community_id), author.user_id).await
        })
        .await?;
    if is_banned {
        return Err(banned());
    }
    if let Some(image_id) = input.image_id {
        crate::service::media::ready_of(ctx, author.user_id, image_id, "image_id").await?;
    }
    let body_html = crate::markdown::render(input.body.as_str());
    let created_at = Utc::now();
    let work = ctx.db.transaction::<_, AppError>("posts.create", &mut conn, async move |conn| {
        let post = NewPost {
            community_id,
            author_id: author.user_id.0,
            title: input.title.as_str(),
            body: input.body.as_str(),
            body_html: &body_html,
            url: input.url.as_ref().map(|u| u.as_str()),
            created_at,
            hot_rank: hot_rank(0, created_at),
            image_upload_id: input.image_id,
            nsfw: input.nsfw,
            spoiler: input.spoiler,
        };
        Ok(db_posts::insert(conn, &post).await?)
    });
    let id = work.await?;
    ctx.metrics.posts_created.inc();
    cache_sync::committed(ctx, &mut conn, author.user_id, &[Change::Listings, Change::Communities]).await;
    view(ctx, &mut conn, id, author.user_id.0).await.map(Post::from)
}

/// Edits the author's own post.
#[tracing::instrument(name = "service.posts.edit", skip_all, fields(post_id = id.0))]
pub async fn edit(ctx: &Context, editor: Authenticated, id: PostId, edit: PostEdit) -> Result<Post, AppError> {
    let mut conn = ctx.db.conn().await?;
    let facts = ctx.db.observe("posts.facts", &mut conn, async |conn| db_posts::facts(conn, id, false).await).await?;
    let facts = facts.ok_or_else(|| AppError::not_found("post"))?;
    if facts.author_id != editor.user_id.0 {
        return Err(forbidden("only the author can edit a post"));
    }
    if facts.deleted {
        return Err(forbidden("a deleted post cannot be edited"));
    }
    let body = edit.body.map(|b| {
        let html = crate::markdown::render(b.as_str());
        (b.into_string(), html)
    });
    let title = edit.title.map(|t| t.into_string());
    let flags = db_posts::PostFlags { nsfw: edit.nsfw, spoiler: edit.spoiler };
    ctx.db
        .observe("posts.edit", &mut conn, async |conn| {
            db_posts::edit(conn, id, title.as_deref(), body.as_ref().map(|(b, h)| (b.as_str(), h.as_str())), flags)
                .await
        })
        .await?;
    cache_sync::committed(ctx, &mut conn, editor.user_id, &[Change::Post(id.0)]).await;
    view(ctx, &mut conn, id.0, editor.user_id.0).await.map(Post::from)
}

/// Deletes the author's own post: it stays, blanked, with `deleted: true`.
#[tracing::instrument(name = "service.posts.delete", skip_all, fields(post_id = id.0))]
pub async fn delete(ctx: &Context, author: Authenticated, id: PostId) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    let work = ctx.db.transaction::<_, AppError>("posts.delete", &mut conn, async move |conn| {
        let facts = db_posts::facts(conn, id, true).await?.ok_or_else(|| AppError::not_found("post"))?;
        if facts.author_id != author.user_id.0 {
            return Err(forbidden("only the author can delete a post"));
        }
        if !facts.deleted {
            db_posts::delete(conn, id, CommunityId(facts.community_id)).await?;
        }
        Ok(())
    });
    work.await?;
    cache_sync::committed(ctx, &mut conn, author.user_id, &[Change::Post(id.0), Change::Communities]).await;
    Ok(())
}

/// Votes on a post: up, down or clear; repeating a vote changes nothing. One statement does
/// it all (see `db::posts::vote`), so a vote costs one round trip.
#[tracing::instrument(name = "service.posts.vote", skip_all, fields(post_id = id.0, value = value.get()))]
pub async fn vote(ctx: &Context, voter: Authenticated, id: PostId, value: VoteValue) -> Result<VoteResult, AppError> {
    let changes =
        [Change::Post(id.0), Change::Profiles, Change::Viewer(voter.user_id.0), Change::Wrote(voter.user_id.0)];
    let notify = cache_sync::payload(ctx, &changes);
    let mut conn = ctx.db.conn().await?;
    let outcome = ctx
        .db
        .observe("posts.vote", &mut conn, async |conn| {
            db_posts::vote(conn, id, voter.user_id, value.get(), notify.as_deref()).await
        })
        .await?;
    let (tally, changed) = counted(outcome, "post")?;
    if changed {
        ctx.caches.responses.apply(&changes, Source::Local);
    }
    ctx.metrics.votes.with_label_values(&["post"]).inc();
    Ok(VoteResult { score: tally.score, upvotes: tally.upvotes, downvotes: tally.downvotes, my_vote: value.get() })
}

/// The tally of a counted vote and whether it changed anything, or the refusal as the API
/// words it.
pub(crate) fn counted(outcome: VoteOutcome, target: &'static str) -> Result<(Tally, bool), AppError> {
    match outcome {
        VoteOutcome::Counted { tally, changed } => Ok((tally, changed)),
        VoteOutcome::NotFound => Err(AppError::not_found(target)),
        VoteOutcome::Closed => Err(forbidden(&format!("this {target} can no longer be voted on"))),
        VoteOutcome::Banned => Err(banned()),
    }
}

/// The answer to a vote.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct VoteResult {
    /// Upvotes minus downvotes.
    pub score: i32,
    /// Upvotes.
    pub upvotes: i32,
    /// Downvotes.
    pub downvotes: i32,
    /// The caller's vote now.
    pub my_vote: i16,
}

/// How many more shared pages a listing reads to fill a reader's page after their filters
/// dropped posts: a reader who filters most of a listing gets shorter pages, never a slow one.
const REFILL_PAGES: usize = 3;

/// A page of posts as `reader` sees it: their hidden posts, blocked authors and communities
/// and filtered keywords left out (refilled from the following shared pages, each cached),
/// their votes and saves marked. The shared answer is kept when nothing on the page concerns
/// them beyond votes; otherwise their page is made once and cached under `of` (the shared
/// page's key) until that page or their own choices change (and so is the finding that the
/// page does not concern them). `listing` is the request of a listing (refilled), `None` for
/// search.
pub(crate) async fn for_reader(
    ctx: &Context,
    served: Served,
    reader: Authenticated,
    of: Key,
    listing: Option<&ListRequest>,
) -> Result<Served, AppError> {
    let shared = served.entry.clone();
    let Some(page) = shared.data::<Page<Post>>() else { return Ok(served) };
    let marks = served.marks().cloned().unwrap_or_default();
    let prefs = crate::service::viewer::viewer_prefs(ctx, reader.user_id).await?;
    if marks.saved.is_empty() && marks.hidden.is_empty() && !prefs.filters_anything() {
        // Most readers, most pages: nothing to do beyond the votes written into the shared bytes.
        return Ok(served);
    }
    let in_community = listing.is_some_and(|request| request.community.is_some());
    let shown =
        |post: &Post, marks: &Marks| !marks.hidden.contains(&post.view.id) && prefs.lists(&post.view, in_community);
    let key = Key::ForReader { viewer: reader.user_id.0, of: Box::new(of) };
    let made = ctx
        .caches
        .responses
        .get_or_fill(key, async {
            if page.items.iter().all(|post| shown(post, &marks) && !marks.saved.contains(&post.view.id)) {
                return Ok(Entry::unchanged());
            }
            let page = refilled(ctx, page, marks, reader, listing, &shown).await?;
            Entry::json(page, Vec::new())
        })
        .await?;
    Ok(served.for_reader(made))
}

/// `page` without what `shown` refuses, refilled from the listing's next shared pages, with
/// the reader's marks written in.
async fn refilled(
    ctx: &Context,
    page: &Page<Post>,
    mut marks: Marks,
    reader: Authenticated,
    listing: Option<&ListRequest>,
    shown: &impl Fn(&Post, &Marks) -> bool,
) -> Result<Page<Post>, AppError> {
    let mut items: Vec<Post> = page.items.iter().filter(|post| shown(post, &marks)).cloned().collect();
    let mut next_cursor = page.next_cursor.clone();
    if let Some(request) = listing {
        let limit = usize::try_from(request.limit.get()).unwrap_or(usize::MAX);
        let mut read = 0;
        while items.len() < limit
            && read < REFILL_PAGES
            && let Some(cursor) = next_cursor.clone()
        {
            read += 1;
            let more_request = ListRequest { cursor: Some(cursor), ..request.clone() };
            let more = shared_listing(ctx, &more_request).await?;
            let more_marks = post_marks(ctx, reader, more.entry.voted_ids()).await?;
            merge(&mut marks, more_marks.entry.data::<Marks>());
            let Some(more_page) = more.entry.data::<Page<Post>>() else { break };
            items.extend(more_page.items.iter().filter(|post| shown(post, &marks)).cloned());
            next_cursor = more_page.next_cursor.clone();
        }
        if items.len() > limit {
            let last = &items[limit - 1];
            // Pinned posts lead a community's first page and are not in its keyset order.
            if !(last.view.pinned && request.community.is_some()) {
                next_cursor = Some(cursor_after(request.sort, last));
                items.truncate(limit);
            }
        }
    }
    for post in &mut items {
        post.view.my_vote = marks.votes.get(&post.view.id).copied().unwrap_or(0);
        post.view.saved = marks.saved.contains(&post.view.id);
    }
    Ok(Page { items, next_cursor })
}

fn merge(into: &mut Marks, more: Option<&Marks>) {
    if let Some(more) = more {
        into.votes.extend(more.votes.iter().map(|(k, v)| (*k, *v)));
        into.saved.extend(more.saved.iter().copied());
        into.hidden.extend(more.hidden.iter().copied());
    }
}

/// One post as `reader` sees it: their vote, save and hide marked (cached for them).
pub(crate) async fn post_for_reader(ctx: &Context, served: Served, reader: Authenticated) -> Result<Served, AppError> {
    let shared = served.entry.clone();
    let Some(post) = shared.data::<Post>() else { return Ok(served) };
    let Some(marks) = served.marks().cloned() else { return Ok(served) };
    let id = post.view.id;
    if !marks.saved.contains(&id) && !marks.hidden.contains(&id) {
        return Ok(served);
    }
    let key = Key::ForReader { viewer: reader.user_id.0, of: Box::new(Key::Post(id)) };
    let made = ctx
        .caches
        .responses
        .get_or_fill(key, async {
            let mut post = post.clone();
            post.view.my_vote = marks.votes.get(&id).copied().unwrap_or(0);
            post.view.saved = marks.saved.contains(&id);
            post.view.hidden = marks.hidden.contains(&id);
            Entry::json(post, Vec::new())
        })
        .await?;
    Ok(served.for_reader(made))
}
