//! What a signed-in reader keeps and refuses: `PUT|DELETE /posts/{id}/save|hide`,
//! `PUT|DELETE /comments/{id}/save`, `GET /me/saved`, `PUT|DELETE /me/blocks/...` and
//! `GET /me/blocks`. Thin handlers over `service::reader`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::domain::Limit;
use crate::domain::reader::Mark;
use crate::edge::HttpState;
use crate::edge::problem::Problem;
use crate::error::AppError;
use crate::http::auth::CurrentUser;
use crate::service::communities::Page;
use crate::service::reader::{self, BlockList, BlockTarget, SavedItem, SavedKind};

async fn mark(state: &HttpState, user: CurrentUser, mark: Mark, id: i64, on: bool) -> Result<HttpResponse, AppError> {
    reader::set_mark(state, user.0, mark, id, on).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /api/v1/posts/{id}/save`
#[utoipa::path(
    put,
    path = "/api/v1/posts/{id}/save",
    tag = "posts",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "saved (again: no change); it shows in `/me/saved` and as `saved: true`"),
        (status = 404, description = "not_found: no such post", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn save_post(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    mark(&state, user, Mark::SavedPost, id.into_inner(), true).await
}

/// `DELETE /api/v1/posts/{id}/save`
#[utoipa::path(
    delete,
    path = "/api/v1/posts/{id}/save",
    tag = "posts",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "not saved (any more)"),
        (status = 404, description = "not_found: no such post", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn unsave_post(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    mark(&state, user, Mark::SavedPost, id.into_inner(), false).await
}

/// `PUT /api/v1/posts/{id}/hide`
#[utoipa::path(
    put,
    path = "/api/v1/posts/{id}/hide",
    tag = "posts",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "hidden (again: no change): the post leaves every listing and feed of the caller"),
        (status = 404, description = "not_found: no such post", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn hide_post(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    mark(&state, user, Mark::HiddenPost, id.into_inner(), true).await
}

/// `DELETE /api/v1/posts/{id}/hide`
#[utoipa::path(
    delete,
    path = "/api/v1/posts/{id}/hide",
    tag = "posts",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "not hidden (any more)"),
        (status = 404, description = "not_found: no such post", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn unhide_post(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    mark(&state, user, Mark::HiddenPost, id.into_inner(), false).await
}

/// `PUT /api/v1/comments/{id}/save`
#[utoipa::path(
    put,
    path = "/api/v1/comments/{id}/save",
    tag = "comments",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "saved (again: no change)"),
        (status = 404, description = "not_found: no such comment", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn save_comment(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    mark(&state, user, Mark::SavedComment, id.into_inner(), true).await
}

/// `DELETE /api/v1/comments/{id}/save`
#[utoipa::path(
    delete,
    path = "/api/v1/comments/{id}/save",
    tag = "comments",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "not saved (any more)"),
        (status = 404, description = "not_found: no such comment", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn unsave_comment(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    mark(&state, user, Mark::SavedComment, id.into_inner(), false).await
}

/// Query of `GET /me/saved`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SavedQuery {
    /// `posts` (default) or `comments`.
    #[serde(rename = "type")]
    #[param(inline)]
    kind: Option<SavedKind>,
    /// Items per page (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// `GET /api/v1/me/saved`
#[utoipa::path(
    get,
    path = "/api/v1/me/saved",
    tag = "accounts",
    params(SavedQuery),
    responses(
        (status = 200, description = "the caller's saved posts (or comments, without replies), most recently saved first", body = Page<SavedItem>)
    ),
    security(("bearer" = []))
)]
pub async fn saved(
    req: actix_web::HttpRequest,
    state: web::Data<HttpState>,
    user: CurrentUser,
    query: web::Query<SavedQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let limit = Limit::parse(query.limit, 25, 100).map_err(|err| AppError::invalid_field("limit", err.to_string()))?;
    let kind = query.kind.unwrap_or_default();
    let page = reader::saved_cached(&state, user.0, kind, limit, query.cursor.as_deref()).await?;
    Ok(crate::edge::cached::json(&req, &page))
}

async fn block(
    state: &HttpState,
    user: CurrentUser,
    target: BlockTarget,
    name: &str,
    on: bool,
) -> Result<HttpResponse, AppError> {
    let name = match target {
        BlockTarget::User => crate::edge::names::user(name)?.as_str().to_owned(),
        BlockTarget::Community => crate::edge::names::community(name)?.as_str().to_owned(),
    };
    reader::set_block(state, user.0, target, &name, on).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /api/v1/me/blocks/users/{username}`
#[utoipa::path(
    put,
    path = "/api/v1/me/blocks/users/{username}",
    tag = "accounts",
    params(("username" = String, Path)),
    responses(
        (status = 204, description = "blocked (again: no change): their posts and comments leave the caller's listings, their comments in a thread show as `blocked`, and they cannot message the caller"),
        (status = 404, description = "not_found: no such user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: the caller cannot block themselves", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn block_user(
    state: web::Data<HttpState>,
    user: CurrentUser,
    name: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    block(&state, user, BlockTarget::User, &name, true).await
}

/// `DELETE /api/v1/me/blocks/users/{username}`
#[utoipa::path(
    delete,
    path = "/api/v1/me/blocks/users/{username}",
    tag = "accounts",
    params(("username" = String, Path)),
    responses(
        (status = 204, description = "not blocked (any more)"),
        (status = 404, description = "not_found: no such user", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn unblock_user(
    state: web::Data<HttpState>,
    user: CurrentUser,
    name: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    block(&state, user, BlockTarget::User, &name, false).await
}

/// `PUT /api/v1/me/blocks/communities/{name}`
#[utoipa::path(
    put,
    path = "/api/v1/me/blocks/communities/{name}",
    tag = "accounts",
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "blocked (again: no change): its posts leave the caller's front page, feeds and search"),
        (status = 404, description = "not_found: no such community", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn block_community(
    state: web::Data<HttpState>,
    user: CurrentUser,
    name: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    block(&state, user, BlockTarget::Community, &name, true).await
}

/// `DELETE /api/v1/me/blocks/communities/{name}`
#[utoipa::path(
    delete,
    path = "/api/v1/me/blocks/communities/{name}",
    tag = "accounts",
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "not blocked (any more)"),
        (status = 404, description = "not_found: no such community", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn unblock_community(
    state: web::Data<HttpState>,
    user: CurrentUser,
    name: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    block(&state, user, BlockTarget::Community, &name, false).await
}

/// `GET /api/v1/me/blocks`
#[utoipa::path(
    get,
    path = "/api/v1/me/blocks",
    tag = "accounts",
    responses((status = 200, description = "the users and communities the caller blocks", body = BlockList)),
    security(("bearer" = []))
)]
pub async fn blocks(state: web::Data<HttpState>, user: CurrentUser) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(reader::blocks(&state, user.0).await?))
}
