//! `/api/v1/posts/*`, `/api/v1/communities/{name}/posts`, `/api/v1/search`: thin handlers over
//! `service::posts`.

use crate::edge::problem::Problem;
use crate::service::communities::Page;
use crate::service::posts::{Post, VoteResult};
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::domain::{Body, Limit, LinkUrl, PostId, PostSort, PostTitle, TimeWindow, VoteValue};
use crate::edge::HttpState;
use crate::error::AppError;
use crate::error::Fields;
use crate::http::auth::{CurrentUser, MaybeUser};
use crate::http::body::JsonBody;
use crate::service::posts::{self, ListRequest, NewPostInput, PostEdit};

/// Body of `POST /communities/{name}/posts`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreatePostBody)]
pub struct CreateBody {
    /// 1 to 300 characters (surrounding spaces are trimmed).
    #[schema(
        pattern = r"^[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000](?:[^\u0000]{0,298}[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000])?[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    title: String,
    /// Markdown, at most 40,000 characters.
    #[schema(max_length = 40000, pattern = r"^[^\u0000]*$")]
    body: Option<String>,
    /// An http:// or https:// link of at most 2,000 characters.
    #[schema(
        max_length = 2000,
        pattern = r"^[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[hH][tT][tT][pP][sS]?://[^/?#\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f][^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f]*[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    url: Option<String>,
    /// A ready upload of the caller's (`POST /api/v1/uploads`) to show with the post.
    #[serde(default, deserialize_with = "crate::http::integers::optional_integer")]
    image_id: Option<i64>,
    /// Not safe for work (pages blur its image). Default false.
    nsfw: Option<bool>,
    /// A spoiler (pages hide its image until clicked). Default false.
    spoiler: Option<bool>,
}

/// Body of `PATCH /posts/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EditPostBody)]
pub struct EditBody {
    /// 1 to 300 characters (surrounding spaces are trimmed).
    #[schema(
        pattern = r"^[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000](?:[^\u0000]{0,298}[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000])?[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    title: Option<String>,
    /// Markdown, at most 40,000 characters.
    #[schema(max_length = 40000, pattern = r"^[^\u0000]*$")]
    body: Option<String>,
    /// Not safe for work.
    nsfw: Option<bool>,
    /// A spoiler.
    spoiler: Option<bool>,
}

/// Body of `PUT /posts/{id}/vote` and `PUT /comments/{id}/vote`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VoteBody {
    /// -1, 0 or 1.
    #[schema(minimum = -1, maximum = 1)]
    #[serde(deserialize_with = "crate::http::integers::integer")]
    pub value: i64,
}

/// Query of `GET /posts`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    community: Option<String>,
    /// `subscribed`: only the communities the caller joined (sign-in needed; not with `community`).
    feed: Option<crate::domain::content::Feed>,
    sort: Option<PostSort>,
    t: Option<TimeWindow>,
    /// Items per page (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// Query of `GET /search`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SearchQuery {
    /// Search terms, 1 to 200 characters.
    #[param(min_length = 1, max_length = 200, pattern = r"^[^\u0000]*$")]
    q: String,
    community: Option<String>,
    /// Items per page (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// `POST /api/v1/communities/{name}/posts`
#[utoipa::path(
    post,
    path = "/api/v1/communities/{name}/posts",
    tag = "posts",
    params(("name" = String, Path)),
    request_body = CreateBody,
    responses(
        (status = 201, description = "the new post", body = Post, headers(("location" = String, description = "the new post: /api/v1/posts/{id}"))),
        (status = 403, description = "banned; forbidden: image_id does not name one of the caller's uploads", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such community", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn create(
    state: web::Data<HttpState>,
    user: CurrentUser,
    community: web::Path<String>,
    body: JsonBody<CreateBody>,
) -> Result<HttpResponse, AppError> {
    let mut fields = Fields::default();
    let title = fields.check("title", PostTitle::parse(&body.title));
    let text = fields.check("body", Body::parse_post(body.body.as_deref().unwrap_or("")));
    let url = match body.url.as_deref() {
        Some(url) => fields.check("url", LinkUrl::parse(url)).map(Some),
        None => Some(None),
    };
    let (image_id, nsfw, spoiler) = (body.image_id, body.nsfw.unwrap_or(false), body.spoiler.unwrap_or(false));
    let input = fields.finish(title.zip(text).zip(url).map(|((title, body), url)| NewPostInput {
        title,
        body,
        url,
        image_id,
        nsfw,
        spoiler,
    }))?;
    let post = posts::create(&state, user.0, &crate::edge::names::community(&community)?, input).await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/api/v1/posts/{}", post.view.id))).json(post))
}

/// `GET /api/v1/posts`
#[utoipa::path(
    get,
    path = "/api/v1/posts",
    tag = "posts",
    params(ListQuery),
    responses(
        (status = 200, description = "a page of posts; pinned posts first within a community", body = Page<Post>),
        (status = 401, description = "unauthorized: `feed=subscribed` without a valid access token", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such community", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list(
    req: actix_web::HttpRequest,
    state: web::Data<HttpState>,
    reader: MaybeUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let limit = Limit::parse(query.limit, 25, 100).map_err(|err| AppError::invalid_field("limit", err.to_string()))?;
    let feed_of = match query.feed.unwrap_or_default() {
        crate::domain::content::Feed::All => None,
        crate::domain::content::Feed::Subscribed if query.community.is_some() => {
            return Err(AppError::invalid_field("feed", "cannot be combined with community"));
        }
        crate::domain::content::Feed::Subscribed => {
            Some(reader.0.ok_or_else(|| AppError::unauthorized("the subscribed feed is the signed-in caller's own"))?)
        }
    };
    let request = ListRequest {
        community: crate::edge::names::optional_community(query.community.as_deref())?,
        sort: query.sort.unwrap_or_default(),
        window: query.t.unwrap_or_default(),
        limit,
        cursor: query.cursor,
        feed_of,
    };
    Ok(crate::edge::cached::json(&req, &posts::list_cached(&state, request, reader.0).await?))
}

/// `GET /api/v1/posts/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/posts/{id}",
    tag = "posts",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "the post", body = Post),
        (status = 404, description = "not_found: no such post", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get(
    req: actix_web::HttpRequest,
    state: web::Data<HttpState>,
    reader: MaybeUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    Ok(crate::edge::cached::json(&req, &posts::get_cached(&state, PostId(id.into_inner()), reader.0).await?))
}

/// `PATCH /api/v1/posts/{id}`
#[utoipa::path(
    patch,
    path = "/api/v1/posts/{id}",
    tag = "posts",
    params(("id" = i64, Path)),
    request_body = EditBody,
    responses(
        (status = 200, description = "the post, with edited_at set", body = Post),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such post", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn edit(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
    body: JsonBody<EditBody>,
) -> Result<HttpResponse, AppError> {
    let mut fields = Fields::default();
    let edit = PostEdit {
        title: body.title.as_deref().and_then(|t| fields.check("title", PostTitle::parse(t))),
        body: body.body.as_deref().and_then(|b| fields.check("body", Body::parse_post(b))),
        nsfw: body.nsfw,
        spoiler: body.spoiler,
    };
    let edit = fields.finish(Some(edit))?;
    Ok(HttpResponse::Ok().json(posts::edit(&state, user.0, PostId(id.into_inner()), edit).await?))
}

/// `DELETE /api/v1/posts/{id}`
#[utoipa::path(
    delete,
    path = "/api/v1/posts/{id}",
    tag = "posts",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "deleted: the post stays, blanked, with deleted: true"),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such post", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    posts::delete(&state, user.0, PostId(id.into_inner())).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /api/v1/posts/{id}/vote`
#[utoipa::path(
    put,
    path = "/api/v1/posts/{id}/vote",
    tag = "posts",
    params(("id" = i64, Path)),
    request_body = VoteBody,
    responses(
        (status = 200, description = "the new tally", body = VoteResult),
        (status = 403, description = "forbidden or banned", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such post", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn vote(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
    body: JsonBody<VoteBody>,
) -> Result<HttpResponse, AppError> {
    let value = VoteValue::parse(body.value).map_err(|err| AppError::invalid_field("value", err.to_string()))?;
    Ok(HttpResponse::Ok().json(posts::vote(&state, user.0, PostId(id.into_inner()), value).await?))
}

/// `GET /api/v1/search`
#[utoipa::path(
    get,
    path = "/api/v1/search",
    tag = "posts",
    params(SearchQuery),
    responses(
        (status = 200, description = "posts, best match first", body = Page<Post>),
        (status = 404, description = "not_found: no such community", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn search(
    req: actix_web::HttpRequest,
    state: web::Data<HttpState>,
    reader: MaybeUser,
    query: web::Query<SearchQuery>,
) -> Result<HttpResponse, AppError> {
    let terms = query.q.trim();
    let limit = Limit::parse(query.limit, 25, 100).map_err(|err| AppError::invalid_field("limit", err.to_string()))?;
    let page = posts::search_cached(
        &state,
        terms,
        crate::edge::names::optional_community(query.community.as_deref())?.as_ref(),
        limit,
        query.cursor.as_deref(),
        reader.0,
    )
    .await?;
    Ok(crate::edge::cached::json(&req, &page))
}

/// `GET /api/v1/posts/{id}/summary`
#[utoipa::path(
    get,
    path = "/api/v1/posts/{id}/summary",
    tag = "posts",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "the summary (a stale one is served while a new one is made)", body = crate::summaries::SummaryView),
        (status = 202, description = "pending: the summary is queued (once); ask again", body = Object, example = json!({"status": "pending"})),
        (status = 403, description = "summaries_disabled: the community switched summaries off", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such post", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn summary(
    state: web::Data<HttpState>,
    reader: MaybeUser,
    id: web::Path<i64>,
    request: actix_web::HttpRequest,
) -> Result<HttpResponse, AppError> {
    let requester = crate::edge::caller::summary_requester(&request, &state.config.rate_limits, reader.0);
    Ok(match crate::summaries::get(&state, id.into_inner(), &requester).await? {
        crate::summaries::SummaryAnswer::Ready(view) => HttpResponse::Ok().json(view),
        crate::summaries::SummaryAnswer::Pending => {
            HttpResponse::Accepted().insert_header(("retry-after", "2")).json(serde_json::json!({"status": "pending"}))
        }
    })
}
