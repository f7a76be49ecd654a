//! `/api/v1/mod/*`, reports and `/api/v1/modlog`: thin handlers over `service::moderation`.

use crate::edge::problem::Problem;
use crate::service::comments::Comment;
use crate::service::communities::Page;
use crate::service::moderation::ModlogItem;
use crate::service::moderation::ReportView;
use crate::service::posts::Post;
use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{CommentId, Limit, PostId, Reason};
use crate::edge::HttpState;
use crate::error::AppError;
use crate::http::auth::CurrentUser;
use crate::http::body::JsonBody;
use crate::service::moderation::{self, PostAction, ReportTarget, Why};

/// Body of moderation actions (`{}` when no reason is given) and reports: a rule of the
/// community, free text, or both.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = ReasonBody)]
pub struct WhyBody {
    /// The index of a rule of the community (0 is the first).
    #[schema(minimum = 0, maximum = 19)]
    #[serde(default, deserialize_with = "crate::http::integers::optional_integer")]
    rule_index: Option<i32>,
    /// Free text, at most 1,000 characters.
    #[schema(
        pattern = r"^[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000](?:[^\u0000]{0,998}[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000])?)?[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    reason: Option<String>,
}

impl WhyBody {
    pub(crate) fn parse(&self) -> Result<Why, AppError> {
        let reason = Reason::parse(self.reason.as_deref().unwrap_or(""))
            .map_err(|err| AppError::invalid_field("reason", err.to_string()))?;
        Ok(Why { rule_index: self.rule_index, reason })
    }
}

/// Query of the modlog and the report queue.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ScopeQuery {
    community: Option<String>,
    /// Items per page (default 25).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

fn limit(query: &ScopeQuery) -> Result<Limit, AppError> {
    Limit::parse(query.limit, 25, 100).map_err(|err| AppError::invalid_field("limit", err.to_string()))
}

/// `POST /api/v1/mod/posts/{id}/{action}` — action: remove, restore, lock, unlock, pin, unpin.
#[utoipa::path(
    post,
    path = "/api/v1/mod/posts/{id}/{action}",
    tag = "moderation",
    params(("id" = i64, Path), ("action" = String, Path, description = "remove, restore, lock, unlock, pin or unpin")),
    request_body = WhyBody,
    responses(
        (status = 200, description = "the post after the action", body = Post),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such post or action", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn post_action(
    state: web::Data<HttpState>,
    user: CurrentUser,
    path: web::Path<(i64, String)>,
    body: JsonBody<WhyBody>,
) -> Result<HttpResponse, AppError> {
    let (id, action) = path.into_inner();
    let action = PostAction::parse(&action).ok_or_else(|| AppError::not_found("moderation action"))?;
    let why = body.parse()?;
    Ok(HttpResponse::Ok().json(moderation::moderate_post(&state, user.0, PostId(id), action, why).await?))
}

/// `POST /api/v1/mod/comments/{id}/{action}` — action: remove, restore.
#[utoipa::path(
    post,
    path = "/api/v1/mod/comments/{id}/{action}",
    tag = "moderation",
    params(("id" = i64, Path), ("action" = String, Path, description = "remove or restore")),
    request_body = WhyBody,
    responses(
        (status = 200, description = "the comment after the action", body = Comment),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such comment or action", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn comment_action(
    state: web::Data<HttpState>,
    user: CurrentUser,
    path: web::Path<(i64, String)>,
    body: JsonBody<WhyBody>,
) -> Result<HttpResponse, AppError> {
    let (id, action) = path.into_inner();
    let remove = match action.as_str() {
        "remove" => true,
        "restore" => false,
        _ => return Err(AppError::not_found("moderation action")),
    };
    let why = body.parse()?;
    Ok(HttpResponse::Ok().json(moderation::moderate_comment(&state, user.0, CommentId(id), remove, why).await?))
}

/// `POST /api/v1/posts/{id}/report`
#[utoipa::path(
    post,
    path = "/api/v1/posts/{id}/report",
    tag = "moderation",
    params(("id" = i64, Path)),
    request_body = WhyBody,
    responses(
        (status = 201, description = "reported; the body holds the new report id", body = serde_json::Value),
        (status = 404, description = "not_found: no such post", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn report_post(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
    body: JsonBody<WhyBody>,
) -> Result<HttpResponse, AppError> {
    let id = moderation::report(&state, user.0, ReportTarget::Post(PostId(id.into_inner())), body.parse()?).await?;
    Ok(HttpResponse::Created().json(json!({"id": id})))
}

/// `POST /api/v1/comments/{id}/report`
#[utoipa::path(
    post,
    path = "/api/v1/comments/{id}/report",
    tag = "moderation",
    params(("id" = i64, Path)),
    request_body = WhyBody,
    responses(
        (status = 201, description = "reported; the body holds the new report id", body = serde_json::Value),
        (status = 404, description = "not_found: no such comment", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn report_comment(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
    body: JsonBody<WhyBody>,
) -> Result<HttpResponse, AppError> {
    let target = ReportTarget::Comment(CommentId(id.into_inner()));
    let id = moderation::report(&state, user.0, target, body.parse()?).await?;
    Ok(HttpResponse::Created().json(json!({"id": id})))
}

/// `GET /api/v1/mod/reports`
#[utoipa::path(
    get,
    path = "/api/v1/mod/reports",
    tag = "moderation",
    params(ScopeQuery),
    responses(
        (status = 200, description = "open reports, newest first", body = Page<ReportView>),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such community", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn reports(
    state: web::Data<HttpState>,
    user: CurrentUser,
    query: web::Query<ScopeQuery>,
) -> Result<HttpResponse, AppError> {
    let limit = limit(&query)?;
    let page = moderation::open_reports(
        &state,
        user.0,
        crate::edge::names::optional_community(query.community.as_deref())?.as_ref(),
        limit,
        query.cursor.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `POST /api/v1/mod/reports/{id}/resolve`
#[utoipa::path(
    post,
    path = "/api/v1/mod/reports/{id}/resolve",
    tag = "moderation",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "resolved"),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such open report", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn resolve_report(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    moderation::resolve_report(&state, user.0, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/modlog`
#[utoipa::path(
    get,
    path = "/api/v1/modlog",
    tag = "moderation",
    params(ScopeQuery),
    responses(
        (status = 200, description = "audit-log entries, newest first", body = Page<ModlogItem>),
        (status = 403, description = "forbidden", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such community", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn modlog(
    state: web::Data<HttpState>,
    user: CurrentUser,
    query: web::Query<ScopeQuery>,
) -> Result<HttpResponse, AppError> {
    let limit = limit(&query)?;
    let page = moderation::modlog(
        &state,
        user.0,
        crate::edge::names::optional_community(query.community.as_deref())?.as_ref(),
        limit,
        query.cursor.as_deref(),
    )
    .await?;
    Ok(HttpResponse::Ok().json(page))
}
