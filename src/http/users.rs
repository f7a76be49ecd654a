//! `/api/v1/users/*`: public profiles.

use crate::edge::problem::Problem;
use crate::service::users::PublicUser;
use actix_web::{HttpResponse, web};

use crate::domain::Username;
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
    let username = Username::parse(&username).map_err(|_| AppError::not_found("user"))?;
    Ok(crate::edge::cached::json(&req, &service::users::profile_cached(&state, &username).await?))
}
