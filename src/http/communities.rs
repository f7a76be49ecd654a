//! `/api/v1/communities/*`: thin handlers over `service::communities`.

use crate::edge::problem::Problem;
use crate::service::communities::CommunityView;
use crate::service::communities::Page;
use actix_web::{HttpResponse, web};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::domain::{CommunitySort, CommunityTitle, Description, Limit, Reason, Rules, Username};
use crate::edge::HttpState;
use crate::error::AppError;
use crate::error::Fields;
use crate::http::auth::{CurrentUser, MaybeUser};
use crate::http::body::JsonBody;
use crate::service::communities::{self, CommunityEdit, NewBan, NewCommunity};

/// One community rule: 1 to 500 characters (surrounding spaces are trimmed).
#[derive(utoipa::ToSchema)]
#[schema(value_type = String, pattern = r"^[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000](?:[^\u0000]{0,498}[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000])?[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$")]
#[allow(dead_code)]
pub struct RuleText(String);

/// Body of `POST /communities`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = CreateCommunityBody)]
pub struct CreateBody {
    /// 3 to 21 lowercase letters, digits or underscores.
    #[schema(pattern = r"^[a-z0-9_]{3,21}$")]
    name: String,
    /// 1 to 100 characters (surrounding spaces are trimmed).
    #[schema(
        pattern = r"^[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000](?:[^\u0000]{0,98}[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000])?[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    title: String,
    /// Markdown, at most 10,000 characters.
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    description: Option<String>,
    /// At most 20 rules of 1 to 500 characters each.
    #[schema(max_items = 20, inline, value_type = Option<Vec<RuleText>>)]
    rules: Option<Vec<String>>,
}

/// Body of `PATCH /communities/{name}`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = EditCommunityBody)]
pub struct EditBody {
    /// 1 to 100 characters (surrounding spaces are trimmed).
    #[schema(
        pattern = r"^[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000](?:[^\u0000]{0,98}[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000])?[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    title: Option<String>,
    /// Markdown, at most 10,000 characters.
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    description: Option<String>,
    /// At most 20 rules of 1 to 500 characters each.
    #[schema(max_items = 20, inline, value_type = Option<Vec<RuleText>>)]
    rules: Option<Vec<String>>,
    /// Offer AI summaries of this community's threads.
    summaries_enabled: Option<bool>,
}

/// Body of `POST /communities/{name}/bans`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BanBody {
    /// Who is banned.
    #[schema(pattern = r"^[A-Za-z0-9_]{3,20}$")]
    username: String,
    /// Why, at most 1,000 characters.
    #[schema(
        pattern = r"^[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000](?:[^\u0000]{0,998}[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000])?)?[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    reason: String,
    expires_at: Option<DateTime<Utc>>,
}

/// Query of `GET /communities`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    sort: Option<CommunitySort>,
    /// Items per page (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// `POST /api/v1/communities`
#[utoipa::path(
    post,
    path = "/api/v1/communities",
    tag = "communities",
    request_body = CreateBody,
    responses(
        (status = 201, description = "created; the creator is its first moderator and a member", body = CommunityView, headers(("location" = String, description = "the new community: /api/v1/communities/{name}"))),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "community_exists", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn create(
    state: web::Data<HttpState>,
    user: CurrentUser,
    body: JsonBody<CreateBody>,
) -> Result<HttpResponse, AppError> {
    let description = body.description.as_deref().unwrap_or("");
    let input = NewCommunity::parse(&body.name, &body.title, description, body.rules.as_deref().unwrap_or(&[]))?;
    let community = communities::create(&state, user.0, input).await?;
    Ok(HttpResponse::Created()
        .insert_header(("location", format!("/api/v1/communities/{}", community.name)))
        .json(community))
}

/// `GET /api/v1/communities`
#[utoipa::path(
    get,
    path = "/api/v1/communities",
    tag = "communities",
    params(ListQuery),
    responses(
        (status = 200, description = "a page of communities", body = Page<CommunityView>),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn list(
    state: web::Data<HttpState>,
    reader: MaybeUser,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, AppError> {
    let limit = Limit::parse(query.limit, 25, 100).map_err(|err| AppError::invalid_field("limit", err.to_string()))?;
    let page =
        communities::list(&state, query.sort.unwrap_or_default(), limit, query.cursor.as_deref(), reader.0).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `GET /api/v1/communities/{name}`
#[utoipa::path(
    get,
    path = "/api/v1/communities/{name}",
    tag = "communities",
    params(("name" = String, Path)),
    responses(
        (status = 200, description = "the community", body = CommunityView),
        (status = 404, description = "not_found: no such community", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get(
    req: actix_web::HttpRequest,
    state: web::Data<HttpState>,
    reader: MaybeUser,
    name: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let community = communities::get_cached(&state, &crate::edge::names::community(&name)?, reader.0).await?;
    Ok(crate::edge::cached::json(&req, &community))
}

/// `PATCH /api/v1/communities/{name}`
#[utoipa::path(
    patch,
    path = "/api/v1/communities/{name}",
    tag = "communities",
    params(("name" = String, Path)),
    request_body = EditBody,
    responses(
        (status = 200, description = "the community, updated", body = CommunityView),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such community", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn edit(
    state: web::Data<HttpState>,
    user: CurrentUser,
    name: web::Path<String>,
    body: JsonBody<EditBody>,
) -> Result<HttpResponse, AppError> {
    let mut fields = Fields::default();
    let edit = CommunityEdit {
        title: body.title.as_deref().and_then(|t| fields.check("title", CommunityTitle::parse(t))),
        description: body.description.as_deref().and_then(|d| fields.check("description", Description::parse(d))),
        rules: body.rules.as_deref().and_then(|r| fields.check("rules", Rules::parse(r))),
        summaries_enabled: body.summaries_enabled,
    };
    let edit = fields.finish(Some(edit))?;
    Ok(HttpResponse::Ok().json(communities::edit(&state, user.0, &crate::edge::names::community(&name)?, edit).await?))
}

/// `PUT /api/v1/communities/{name}/membership`
#[utoipa::path(
    put,
    path = "/api/v1/communities/{name}/membership",
    tag = "communities",
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "joined (idempotent)"),
        (status = 403, description = "banned", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such community", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn join(
    state: web::Data<HttpState>,
    user: CurrentUser,
    name: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    communities::join(&state, user.0, &crate::edge::names::community(&name)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/v1/communities/{name}/membership`
#[utoipa::path(
    delete,
    path = "/api/v1/communities/{name}/membership",
    tag = "communities",
    params(("name" = String, Path)),
    responses(
        (status = 204, description = "left (idempotent)"),
        (status = 404, description = "not_found: no such community", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn leave(
    state: web::Data<HttpState>,
    user: CurrentUser,
    name: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    communities::leave(&state, user.0, &crate::edge::names::community(&name)?).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `PUT /api/v1/communities/{name}/moderators/{username}`
#[utoipa::path(
    put,
    path = "/api/v1/communities/{name}/moderators/{username}",
    tag = "communities",
    params(("name" = String, Path), ("username" = String, Path)),
    responses(
        (status = 204, description = "appointed"),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such community or user", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn add_moderator(
    state: web::Data<HttpState>,
    user: CurrentUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (name, username) = path.into_inner();
    let (name, username) = (crate::edge::names::community(&name)?, crate::edge::names::user(&username)?);
    communities::set_moderator(&state, user.0, &name, &username, true).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `DELETE /api/v1/communities/{name}/moderators/{username}`
#[utoipa::path(
    delete,
    path = "/api/v1/communities/{name}/moderators/{username}",
    tag = "communities",
    params(("name" = String, Path), ("username" = String, Path)),
    responses(
        (status = 204, description = "removed"),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such community, user or moderator", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn remove_moderator(
    state: web::Data<HttpState>,
    user: CurrentUser,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AppError> {
    let (name, username) = path.into_inner();
    let (name, username) = (crate::edge::names::community(&name)?, crate::edge::names::user(&username)?);
    communities::set_moderator(&state, user.0, &name, &username, false).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/communities/{name}/bans`
#[utoipa::path(
    post,
    path = "/api/v1/communities/{name}/bans",
    tag = "moderation",
    params(("name" = String, Path)),
    request_body = BanBody,
    responses(
        (status = 204, description = "banned (written to the modlog)"),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such community or user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn ban(
    state: web::Data<HttpState>,
    user: CurrentUser,
    name: web::Path<String>,
    body: JsonBody<BanBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let mut fields = Fields::default();
    let username = fields.check("username", Username::parse(&body.username));
    let reason = fields.check("reason", Reason::parse(&body.reason)).map(Reason::into_string);
    if body.expires_at.is_some_and(|at| at <= Utc::now()) {
        fields.check::<(), _>("expires_at", Err("must be in the future"));
    }
    let ban = fields.finish(username.zip(reason).map(|(username, reason)| NewBan {
        username,
        reason,
        expires_at: body.expires_at,
    }))?;
    communities::ban(&state, user.0, &crate::edge::names::community(&name)?, ban).await?;
    Ok(HttpResponse::NoContent().finish())
}
