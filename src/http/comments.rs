//! `/api/v1/posts/{id}/comments`, `/api/v1/comments/*`: thin handlers over `service::comments`.

use crate::edge::problem::Problem;
use crate::service::comments::{Comment, Tree};
use crate::service::posts::VoteResult;
use actix_web::{HttpResponse, web};
use serde::Deserialize;

use crate::domain::{Body, CommentId, CommentSort, Limit, PostId, VoteValue};
use crate::edge::HttpState;
use crate::error::AppError;
use crate::http::auth::{CurrentUser, MaybeUser};
use crate::http::body::JsonBody;
use crate::http::posts::VoteBody;
use crate::service::comments::{self, TreeShape};

/// Body of `POST /posts/{id}/comments`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateCommentBody)]
pub struct CreateBody {
    /// Markdown, 1 to 40,000 characters, not blank.
    #[schema(
        max_length = 40000,
        pattern = r"^[^\u0000]*[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^\u0000]*$"
    )]
    body: String,
    /// The comment this one answers (none for a top-level comment).
    #[serde(default, deserialize_with = "crate::http::integers::optional_integer")]
    parent_id: Option<i64>,
}

/// Body of `PATCH /comments/{id}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EditCommentBody)]
pub struct EditBody {
    /// Markdown, 1 to 40,000 characters, not blank.
    #[schema(
        max_length = 40000,
        pattern = r"^[^\u0000]*[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^\u0000]*$"
    )]
    body: String,
}

/// Query of the tree endpoints.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct TreeQuery {
    sort: Option<CommentSort>,
    /// Levels of replies below the top-level comments (default 10).
    #[param(minimum = 0, maximum = 50)]
    max_depth: Option<i64>,
    /// Top-level comments per page (default 50).
    #[param(minimum = 1, maximum = 500)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// Query of `GET /comments/{id}`: a subtree is one piece, never paginated.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct SubtreeQuery {
    sort: Option<CommentSort>,
    /// Levels of replies below the comment (default 10).
    #[param(minimum = 0, maximum = 50)]
    max_depth: Option<i64>,
}

fn tree_shape(sort: Option<CommentSort>, max_depth: Option<i64>) -> Result<TreeShape, AppError> {
    let max_depth = match max_depth {
        None => 10,
        Some(depth @ 0..=50) => depth as i32,
        Some(_) => return Err(AppError::invalid_field("max_depth", "must be between 0 and 50")),
    };
    Ok(TreeShape { sort: sort.unwrap_or_default(), max_depth })
}

fn comment_body(text: &str) -> Result<Body, AppError> {
    Body::parse_comment(text).map_err(|err| AppError::invalid_field("body", err.to_string()))
}

/// `POST /api/v1/posts/{id}/comments`
#[utoipa::path(
    post,
    path = "/api/v1/posts/{id}/comments",
    tag = "comments",
    params(("id" = i64, Path)),
    request_body = CreateBody,
    responses(
        (status = 201, description = "the new comment", body = Comment, headers(("location" = String, description = "the new comment: /api/v1/comments/{id}"))),
        (status = 403, description = "locked or banned", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such post", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed, or max_depth_exceeded when the reply would pass the depth cap", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn create(
    state: web::Data<HttpState>,
    user: CurrentUser,
    post: web::Path<i64>,
    body: JsonBody<CreateBody>,
) -> Result<HttpResponse, AppError> {
    let text = comment_body(&body.body)?;
    let parent = body.parent_id.map(CommentId);
    let comment = comments::create(&state, user.0, PostId(post.into_inner()), parent, text).await?;
    Ok(HttpResponse::Created().insert_header(("location", format!("/api/v1/comments/{}", comment.id))).json(comment))
}

/// `GET /api/v1/posts/{id}/comments`
#[utoipa::path(
    get,
    path = "/api/v1/posts/{id}/comments",
    tag = "comments",
    params(("id" = i64, Path), TreeQuery),
    responses(
        (status = 200, description = "top-level comments with their replies", body = Tree),
        (status = 404, description = "not_found: no such post", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn tree(
    req: actix_web::HttpRequest,
    state: web::Data<HttpState>,
    reader: MaybeUser,
    post: web::Path<i64>,
    query: web::Query<TreeQuery>,
) -> Result<HttpResponse, AppError> {
    let shape = tree_shape(query.sort, query.max_depth)?;
    let limit = Limit::parse(query.limit, 50, 500).map_err(|err| AppError::invalid_field("limit", err.to_string()))?;
    let post = PostId(post.into_inner());
    let tree = comments::tree_cached(&state, post, shape, limit, query.cursor.as_deref(), reader.0).await?;
    Ok(crate::edge::cached::json(&req, &tree))
}

/// `GET /api/v1/comments/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/comments/{id}",
    tag = "comments",
    params(("id" = i64, Path), SubtreeQuery),
    responses(
        (status = 200, description = "the comment with its replies (continue this thread)", body = Comment),
        (status = 404, description = "not_found: no such comment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn subtree(
    req: actix_web::HttpRequest,
    state: web::Data<HttpState>,
    reader: MaybeUser,
    id: web::Path<i64>,
    query: web::Query<SubtreeQuery>,
) -> Result<HttpResponse, AppError> {
    let shape = tree_shape(query.sort, query.max_depth)?;
    let comment = comments::subtree_cached(&state, CommentId(id.into_inner()), shape, reader.0).await?;
    Ok(crate::edge::cached::json(&req, &comment))
}

/// `PATCH /api/v1/comments/{id}`
#[utoipa::path(
    patch,
    path = "/api/v1/comments/{id}",
    tag = "comments",
    params(("id" = i64, Path)),
    request_body = EditBody,
    responses(
        (status = 200, description = "the comment, with edited_at set", body = Comment),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such comment", body = Problem, content_type = "application/problem+json"),
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
    let text = comment_body(&body.body)?;
    Ok(HttpResponse::Ok().json(comments::edit(&state, user.0, CommentId(id.into_inner()), text).await?))
}

/// `DELETE /api/v1/comments/{id}`
#[utoipa::path(
    delete,
    path = "/api/v1/comments/{id}",
    tag = "comments",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "deleted: blanked, replies kept"),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such comment", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    comments::delete(&state, user.0, CommentId(id.into_inner())).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /api/v1/comments/{id}/vote`
#[utoipa::path(
    put,
    path = "/api/v1/comments/{id}/vote",
    tag = "comments",
    params(("id" = i64, Path)),
    request_body = crate::http::posts::VoteBody,
    responses(
        (status = 200, description = "the new tally", body = VoteResult),
        (status = 403, description = "forbidden or banned", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such comment", body = Problem, content_type = "application/problem+json"),
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
    Ok(HttpResponse::Ok().json(comments::vote(&state, user.0, CommentId(id.into_inner()), value).await?))
}
