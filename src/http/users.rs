//! `/api/v1/users/*`: public profiles.

use crate::edge::problem::Problem;
use crate::service::users::PublicUser;
use actix_web::{HttpResponse, web};

use crate::edge::HttpState;
use crate::error::AppError;
use crate::service;

/// `GET /api/v1/users/{username}`
#[utoipa::path(
    get,
    path = "/api/v1/users/{username}",
    tag = "accounts",
    params(("username" = String, Path, description = "username, any case")),
    responses(
        (status = 200, description = "a public profile", body = PublicUser),
        (status = 404, description = "not_found: no such user", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get_user(
    req: actix_web::HttpRequest,
    state: web::Data<HttpState>,
    username: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    // A name that cannot be a username cannot name a user: that is a 404, not a 422.
    let username = crate::edge::names::user(&username)?;
    Ok(crate::edge::cached::json(&req, &service::users::profile_cached(&state, &username).await?))
}

/// Query of `GET /users/{username}/posts` and `…/comments`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuthorQuery {
    sort: Option<crate::domain::content::ProfileSort>,
    /// Items per page (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

fn listing(username: &str, query: AuthorQuery) -> Result<service::users::AuthorListing, AppError> {
    let username = crate::edge::names::user(username)?;
    let limit = crate::domain::Limit::parse(query.limit, 25, 100)
        .map_err(|err| AppError::invalid_field("limit", err.to_string()))?;
    Ok(service::users::AuthorListing { username, sort: query.sort.unwrap_or_default(), limit, cursor: query.cursor })
}

/// `GET /api/v1/users/{username}/posts`
#[utoipa::path(
    get,
    path = "/api/v1/users/{username}/posts",
    tag = "accounts",
    params(("username" = String, Path, description = "username, any case"), AuthorQuery),
    responses(
        (status = 200, description = "a page of the user's posts, newest or best first", body = crate::service::communities::Page<crate::service::posts::Post>),
        (status = 404, description = "not_found: no such user", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn posts(
    state: web::Data<HttpState>,
    reader: crate::http::auth::MaybeUser,
    username: web::Path<String>,
    query: web::Query<AuthorQuery>,
) -> Result<HttpResponse, AppError> {
    let listing = listing(&username, query.into_inner())?;
    Ok(HttpResponse::Ok().json(service::users::posts_of(&state, &listing, reader.0).await?))
}

/// `GET /api/v1/users/{username}/comments`
#[utoipa::path(
    get,
    path = "/api/v1/users/{username}/comments",
    tag = "accounts",
    params(("username" = String, Path, description = "username, any case"), AuthorQuery),
    responses(
        (status = 200, description = "a page of the user's comments (without replies), newest or best first", body = crate::service::communities::Page<crate::service::comments::Comment>),
        (status = 404, description = "not_found: no such user", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn comments(
    state: web::Data<HttpState>,
    reader: crate::http::auth::MaybeUser,
    username: web::Path<String>,
    query: web::Query<AuthorQuery>,
) -> Result<HttpResponse, AppError> {
    let listing = listing(&username, query.into_inner())?;
    Ok(HttpResponse::Ok().json(service::users::comments_of(&state, &listing, reader.0).await?))
}
