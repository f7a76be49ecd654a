//! Reading pages: the front page, community pages and their about page, the community
//! directory, search and user profiles.

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::domain::{CommunitySort, Limit, PostSort, TimeWindow};
use crate::edge::HttpState;
use crate::error::AppError;
use crate::service::cache::Served;
use crate::service::communities::CommunityView;
use crate::service::communities::{self, Page};
use crate::service::posts::{self, ListRequest, Post};
use crate::service::users;
use crate::web::session::Viewer;
use crate::web::shared_page::{self, SharedPage, anonymous_layout};
use crate::web::view::{CommentNode, Layout, PostItem, Tab, Time, plural};
use crate::web::{PageError, layout, render};

/// Posts per listing page.
const PAGE_SIZE: i64 = 25;

/// Query of listing pages.
#[derive(Debug, Default, Deserialize)]
pub struct ListingParams {
    sort: Option<PostSort>,
    t: Option<TimeWindow>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "listing.html")]
struct ListingPage {
    layout: Layout,
    heading: String,
    /// The front page's Home / All tabs (empty elsewhere, and for readers who joined nothing).
    feeds: Vec<Tab>,
    community: Option<CommunityView>,
    moderates: bool,
    sorts: Vec<Tab>,
    windows: Vec<Tab>,
    posts: Vec<PostItem>,
    next_href: Option<String>,
    empty_text: &'static str,
}

/// `GET /`: a signed-in reader's home feed (the communities they joined) when they joined
/// any, else every community's posts.
pub async fn front(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: web::Query<ListingParams>,
) -> Result<HttpResponse, PageError> {
    front_page(req, state, viewer, params.into_inner(), false).await
}

/// `GET /all`: every community's posts, for everyone.
pub async fn front_all(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: web::Query<ListingParams>,
) -> Result<HttpResponse, PageError> {
    front_page(req, state, viewer, params.into_inner(), true).await
}

async fn front_page(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: ListingParams,
    all: bool,
) -> Result<HttpResponse, PageError> {
    let joined_any = match viewer.auth {
        Some(auth) => crate::service::viewer::viewer_prefs(&state, auth.user_id).await?.joined_any,
        None => false,
    };
    let home = joined_any && !all;
    let mut request = listing_request(None, &params)?;
    request.feed_of = if home { viewer.auth } else { None };
    let served = posts::list_cached(&state, request, viewer.auth).await?;
    // Anonymous readers see one shared rendering of every community for `/` and `/all`.
    let base = if all && viewer.auth.is_some() { "/all" } else { "/" };
    let feeds = if joined_any {
        vec![
            Tab { label: "Home", href: "/".into(), current: home },
            Tab { label: "All", href: "/all".into(), current: !home },
        ]
    } else {
        Vec::new()
    };
    let page = |layout: Layout| {
        let (posts, next_cursor) = post_items(&served);
        ListingPage {
            layout,
            heading: if home { "Your communities".into() } else { "All communities".into() },
            feeds: feeds.clone(),
            community: None,
            moderates: false,
            sorts: sort_tabs(base, &params),
            windows: window_tabs(base, &params),
            next_href: next_href(base, &params, next_cursor.as_deref()),
            posts,
            empty_text: if home {
                "Nothing new in the communities you joined. See everything under All."
            } else {
                "Nothing has been posted yet. Create a community and start the first thread."
            },
        }
    };
    if viewer.auth.is_none() {
        let shared =
            served.entry.derived(&[], shared_page::MAX_AGE, || SharedPage::render(&page(anonymous_layout())))?;
        return Ok(shared.respond(&req, &viewer.csrf));
    }
    render(&req, &page(layout(&state, &viewer).await?))
}

/// `GET /c/{name}`: one community's posts, pinned first, with its sidebar.
pub async fn community(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    name: web::Path<String>,
    params: web::Query<ListingParams>,
) -> Result<HttpResponse, PageError> {
    let params = params.into_inner();
    let name = crate::edge::names::community(&name)?;
    let community_served = communities::get_cached(&state, &name, viewer.auth).await?;
    let served = posts::list_cached(&state, listing_request(Some(name.as_str()), &params)?, viewer.auth).await?;
    let community =
        community_served.data::<CommunityView>().cloned().ok_or_else(|| AppError::not_found("community"))?;
    let community =
        CommunityView { is_member: community_served.overlay::<bool>().copied().unwrap_or(false), ..community };
    let base = format!("/c/{}", community.name);
    let page = |layout: Layout, moderates: bool| {
        let (posts, next_cursor) = post_items(&served);
        ListingPage {
            moderates,
            layout,
            heading: community.title.clone(),
            feeds: Vec::new(),
            sorts: sort_tabs(&base, &params),
            windows: window_tabs(&base, &params),
            next_href: next_href(&base, &params, next_cursor.as_deref()),
            community: Some(community.clone()),
            posts,
            empty_text: "No posts here yet. Be the first to submit one.",
        }
    };
    if viewer.auth.is_none() {
        let deps = [&community_served.entry];
        let shared = served
            .entry
            .derived(&deps, shared_page::MAX_AGE, || SharedPage::render(&page(anonymous_layout(), false)))?;
        return Ok(shared.respond(&req, &viewer.csrf));
    }
    let layout = layout(&state, &viewer).await?;
    let moderates = moderates(&state, &viewer, &layout, &community).await?;
    render(&req, &page(layout, moderates))
}

/// Whether the viewer may moderate `community` (its moderators and site admins).
pub async fn moderates(
    state: &HttpState,
    viewer: &Viewer,
    layout: &Layout,
    community: &CommunityView,
) -> Result<bool, PageError> {
    match (viewer.auth, layout.username.as_deref()) {
        (Some(auth), Some(username)) => {
            Ok(crate::service::moderation::may_moderate_view(state, auth, username, community).await?)
        }
        _ => Ok(false),
    }
}

/// The listing a page shows for its query.
fn listing_request(community: Option<&str>, params: &ListingParams) -> Result<ListRequest, AppError> {
    Ok(ListRequest {
        community: crate::edge::names::optional_community(community)?,
        sort: params.sort.unwrap_or_default(),
        window: params.t.unwrap_or_default(),
        limit: Limit::fixed(PAGE_SIZE),
        cursor: params.cursor.clone(),
        feed_of: None,
    })
}

/// The posts of a cached page prepared for display, with the viewer's votes.
fn post_items(served: &Served) -> (Vec<PostItem>, Option<String>) {
    let Some(page) = served.data::<Page<Post>>() else { return (Vec::new(), None) };
    let now = Utc::now();
    let items = page
        .items
        .iter()
        .map(|post| {
            let mut item = PostItem::new(post.clone(), now);
            item.set_my_vote(served.my_vote(item.id));
            item
        })
        .collect();
    (items, page.next_cursor.clone())
}

fn listing_href(base: &str, sort: PostSort, window: Option<TimeWindow>, cursor: Option<&str>) -> String {
    let mut pairs: Vec<(&str, String)> = Vec::new();
    if sort != PostSort::Hot {
        pairs.push(("sort", sort_name(sort).to_owned()));
    }
    if let Some(window) = window {
        pairs.push(("t", window_name(window).to_owned()));
    }
    if let Some(cursor) = cursor {
        pairs.push(("cursor", cursor.to_owned()));
    }
    if pairs.is_empty() {
        return base.to_owned();
    }
    format!("{base}?{}", serde_urlencoded::to_string(&pairs).unwrap_or_default())
}

fn windowed(sort: PostSort) -> bool {
    matches!(sort, PostSort::Top | PostSort::Controversial)
}

fn sort_tabs(base: &str, params: &ListingParams) -> Vec<Tab> {
    let current = params.sort.unwrap_or_default();
    [PostSort::Hot, PostSort::New, PostSort::Top, PostSort::Controversial, PostSort::Active]
        .into_iter()
        .map(|sort| Tab {
            label: sort_label(sort),
            href: listing_href(base, sort, windowed(sort).then_some(params.t.unwrap_or(TimeWindow::Day)), None),
            current: sort == current,
        })
        .collect()
}

fn window_tabs(base: &str, params: &ListingParams) -> Vec<Tab> {
    let sort = params.sort.unwrap_or_default();
    if !windowed(sort) {
        return Vec::new();
    }
    let current = params.t.unwrap_or_default();
    [TimeWindow::Hour, TimeWindow::Day, TimeWindow::Week, TimeWindow::Month, TimeWindow::Year, TimeWindow::All]
        .into_iter()
        .map(|window| Tab {
            label: window_label(window),
            href: listing_href(base, sort, Some(window), None),
            current: window == current,
        })
        .collect()
}

fn next_href(base: &str, params: &ListingParams, cursor: Option<&str>) -> Option<String> {
    let sort = params.sort.unwrap_or_default();
    cursor.map(|cursor| listing_href(base, sort, params.t, Some(cursor)))
}

fn sort_name(sort: PostSort) -> &'static str {
    match sort {
        PostSort::Hot => "hot",
        PostSort::New => "new",
        PostSort::Top => "top",
        PostSort::Controversial => "controversial",
        PostSort::Active => "active",
    }
}

fn sort_label(sort: PostSort) -> &'static str {
    match sort {
        PostSort::Hot => "Hot",
        PostSort::New => "New",
        PostSort::Top => "Top",
        PostSort::Controversial => "Controversial",
        PostSort::Active => "Active",
    }
}

fn window_name(window: TimeWindow) -> &'static str {
    match window {
        TimeWindow::Hour => "hour",
        TimeWindow::Day => "day",
        TimeWindow::Week => "week",
        TimeWindow::Month => "month",
        TimeWindow::Year => "year",
        TimeWindow::All => "all",
    }
}

fn window_label(window: TimeWindow) -> &'static str {
    match window {
        TimeWindow::Hour => "Past hour",
        TimeWindow::Day => "Today",
        TimeWindow::Week => "This week",
        TimeWindow::Month => "This month",
        TimeWindow::Year => "This year",
        TimeWindow::All => "All time",
    }
}

#[derive(Template)]
#[template(path = "about.html")]
struct AboutPage {
    layout: Layout,
    community: CommunityView,
    moderates: bool,
    created: Time,
}

/// `GET /c/{name}/about`: description, rules and moderators (the sidebar, on its own page).
pub async fn about(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    name: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let community = communities::get_for(&state, &crate::edge::names::community(&name)?, viewer.auth).await?;
    let layout = layout(&state, &viewer).await?;
    let template = AboutPage {
        moderates: moderates(&state, &viewer, &layout, &community).await?,
        created: Time::at(community.created_at, Utc::now()),
        layout,
        community,
    };
    render(&req, &template)
}

/// Query of the community directory.
#[derive(Debug, Deserialize)]
pub struct DirectoryParams {
    sort: Option<CommunitySort>,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "communities.html")]
struct DirectoryPage {
    layout: Layout,
    communities: Vec<CommunityView>,
    sorts: Vec<Tab>,
    next_href: Option<String>,
}

/// `GET /communities`: every community, most members or newest first.
pub async fn communities(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: web::Query<DirectoryParams>,
) -> Result<HttpResponse, PageError> {
    let sort = params.sort.unwrap_or_default();
    let page = communities::list(&state, sort, Limit::fixed(50), params.cursor.as_deref(), viewer.auth).await?;
    let name = |sort: CommunitySort| if sort == CommunitySort::New { "new" } else { "popular" };
    let sorts = [(CommunitySort::Popular, "Most members"), (CommunitySort::New, "Newest")]
        .into_iter()
        .map(|(option, label)| Tab {
            label,
            href: format!("/communities?sort={}", name(option)),
            current: option == sort,
        })
        .collect();
    let next_href = page.next_cursor.as_deref().map(|cursor| {
        format!(
            "/communities?{}",
            serde_urlencoded::to_string([("sort", name(sort)), ("cursor", cursor)]).unwrap_or_default()
        )
    });
    let template = DirectoryPage { layout: layout(&state, &viewer).await?, communities: page.items, sorts, next_href };
    render(&req, &template)
}

/// Query of the search page.
#[derive(Debug, Deserialize)]
pub struct SearchParams {
    #[serde(default)]
    q: String,
    cursor: Option<String>,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    layout: Layout,
    posts: Vec<PostItem>,
    next_href: Option<String>,
    searched: bool,
}

/// `GET /search?q=`: posts matching the words, best match first.
pub async fn search(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: web::Query<SearchParams>,
) -> Result<HttpResponse, PageError> {
    let terms = params.q.trim();
    let mut layout = layout(&state, &viewer).await?;
    layout.query = terms.to_owned();
    if terms.is_empty() {
        return render(&req, &SearchPage { layout, posts: Vec::new(), next_href: None, searched: false });
    }
    let served =
        posts::search_cached(&state, terms, None, Limit::fixed(PAGE_SIZE), params.cursor.as_deref(), viewer.auth)
            .await?;
    let (posts, next_cursor) = post_items(&served);
    let next_href = next_cursor.as_deref().map(|cursor| {
        format!("/search?{}", serde_urlencoded::to_string([("q", terms), ("cursor", cursor)]).unwrap_or_default())
    });
    render(&req, &SearchPage { layout, posts, next_href, searched: true })
}

/// Query of a profile page.
#[derive(Debug, Deserialize)]
pub struct ProfileParams {
    show: Option<String>,
    before: Option<String>,
}

#[derive(Template)]
#[template(path = "user.html")]
struct ProfilePage {
    layout: Layout,
    user: users::PublicUser,
    karma: String,
    /// The bio, rendered and sanitized.
    bio_html: String,
    joined: Time,
    showing_comments: bool,
    posts: Vec<PostItem>,
    comments: Vec<CommentNode>,
    next_href: Option<String>,
}

/// `GET /u/{username}`: karma and the user's posts or comments, newest first.
pub async fn user(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    username: web::Path<String>,
    params: web::Query<ProfileParams>,
) -> Result<HttpResponse, PageError> {
    let username = crate::edge::names::user(&username)?;
    let showing_comments = params.show.as_deref() == Some("comments");
    let before = params.before.as_deref().map(parse_before).transpose()?;
    let activity = users::activity(&state, &username, showing_comments, before, PAGE_SIZE, viewer.auth).await?;
    let now = Utc::now();
    let next_href = activity.next.map(|(at, id)| {
        let show = if showing_comments { "comments" } else { "posts" };
        format!("/u/{}?show={show}&before={}_{id}", activity.user.username, at.timestamp_micros())
    });
    let template = ProfilePage {
        layout: layout(&state, &viewer).await?,
        karma: plural(activity.user.karma, "karma point"),
        bio_html: crate::markdown::render(&activity.user.bio),
        joined: Time::at(activity.user.created_at, now),
        showing_comments,
        posts: activity.posts.into_iter().map(|post| PostItem::new(post, now)).collect(),
        comments: crate::web::view::flatten(activity.comments, now),
        next_href,
        user: activity.user,
    };
    render(&req, &template)
}

fn parse_before(text: &str) -> Result<(chrono::DateTime<Utc>, i64), PageError> {
    let invalid = || PageError::from(AppError::bad_request("this page link is broken"));
    let (micros, id) = text.split_once('_').ok_or_else(invalid)?;
    let at = micros.parse().ok().and_then(chrono::DateTime::from_timestamp_micros).ok_or_else(invalid)?;
    Ok((at, id.parse().map_err(|_| invalid())?))
}
