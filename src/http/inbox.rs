//! `/api/v1/me/inbox*` and `/api/v1/me/unread`: thin handlers over `service::inbox`.

use actix_web::{HttpResponse, web};
use serde::{Deserialize, Serialize};

use crate::domain::Limit;
use crate::edge::HttpState;
use crate::edge::problem::Problem;
use crate::error::AppError;
use crate::http::auth::CurrentUser;
use crate::service::communities::Page;
use crate::service::inbox;
use crate::service::inbox::InboxItem;

/// Query of `GET /me/inbox`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct InboxQuery {
    /// Only the items not read yet.
    unread_only: Option<bool>,
    /// Items per page (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// The answer of `GET /me/unread`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Unread {
    /// Unread inbox items.
    pub inbox: i64,
}

/// `GET /api/v1/me/inbox`
#[utoipa::path(
    get,
    path = "/api/v1/me/inbox",
    tag = "accounts",
    params(InboxQuery),
    responses((status = 200, description = "the caller's inbox, newest first", body = Page<InboxItem>)),
    security(("bearer" = []))
)]
pub async fn list(
    state: web::Data<HttpState>,
    user: CurrentUser,
    query: web::Query<InboxQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let limit = Limit::parse(query.limit, 25, 100).map_err(|err| AppError::invalid_field("limit", err.to_string()))?;
    let page =
        inbox::page(&state, user.0.user_id, query.unread_only.unwrap_or(false), limit, query.cursor.as_deref()).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `POST /api/v1/me/inbox/{id}/read`
#[utoipa::path(
    post,
    path = "/api/v1/me/inbox/{id}/read",
    tag = "accounts",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "read (again: no change)"),
        (status = 404, description = "not_found: no such item in the caller's inbox", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn read(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    inbox::mark_read(&state, user.0.user_id, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/me/inbox/read-all`
#[utoipa::path(
    post,
    path = "/api/v1/me/inbox/read-all",
    tag = "accounts",
    responses((status = 204, description = "every item read")),
    security(("bearer" = []))
)]
pub async fn read_all(state: web::Data<HttpState>, user: CurrentUser) -> Result<HttpResponse, AppError> {
    inbox::mark_all_read(&state, user.0.user_id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/me/unread`
#[utoipa::path(
    get,
    path = "/api/v1/me/unread",
    tag = "accounts",
    responses((status = 200, description = "unread counts (cached; what the pages' badge shows)", body = Unread)),
    security(("bearer" = []))
)]
pub async fn unread(state: web::Data<HttpState>, user: CurrentUser) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(Unread { inbox: inbox::unread(&state, user.0.user_id).await? }))
}
