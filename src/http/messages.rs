//! `/api/v1/messages`: private messages, thin handlers over `service::messages`.

use actix_web::{HttpResponse, web};
use serde::Deserialize;
use serde_json::json;

use crate::domain::{Body, Limit};
use crate::edge::HttpState;
use crate::edge::problem::Problem;
use crate::error::AppError;
use crate::http::auth::CurrentUser;
use crate::http::body::JsonBody;
use crate::http::moderation::WhyBody;
use crate::service::communities::Page;
use crate::service::messages::{self, Message};

/// Body of `POST /api/v1/messages`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = SendMessageBody)]
pub struct SendBody {
    /// The recipient's username.
    #[schema(min_length = 3, max_length = 20, pattern = "^[A-Za-z0-9_]+$")]
    to: String,
    /// Markdown, 1 to 10,000 characters, not blank.
    #[schema(
        max_length = 10000,
        pattern = r"^[^\u0000]*[^\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000][^\u0000]*$"
    )]
    body: String,
}

/// `POST /api/v1/messages`
#[utoipa::path(
    post,
    path = "/api/v1/messages",
    tag = "messages",
    request_body = SendBody,
    responses(
        (status = 201, description = "sent: the recipient's inbox gains a `message` item", body = Message),
        (status = 403, description = "blocked: the recipient blocks the caller", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such user", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors` (an empty body, a message to oneself)", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn send(
    state: web::Data<HttpState>,
    user: CurrentUser,
    body: JsonBody<SendBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let to = crate::edge::names::user(&body.to)?;
    if body.body.chars().count() > 10_000 {
        return Err(AppError::invalid_field("body", "a message is at most 10,000 characters"));
    }
    let text = Body::parse_comment(&body.body).map_err(|err| AppError::invalid_field("body", err.to_string()))?;
    let message = messages::send(&state, user.0, &to, text).await?;
    Ok(HttpResponse::Created().json(message))
}

/// Query of `GET /api/v1/messages`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ConversationQuery {
    /// The other person's username.
    with: String,
    /// Messages per page (default 50).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
    /// `next_cursor` of the previous page.
    #[param(min_length = 1)]
    cursor: Option<String>,
}

/// `GET /api/v1/messages`
#[utoipa::path(
    get,
    path = "/api/v1/messages",
    tag = "messages",
    params(ConversationQuery),
    responses(
        (status = 200, description = "the conversation with that user, both directions, newest first", body = Page<Message>),
        (status = 404, description = "not_found: no such user", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn conversation(
    state: web::Data<HttpState>,
    user: CurrentUser,
    query: web::Query<ConversationQuery>,
) -> Result<HttpResponse, AppError> {
    let query = query.into_inner();
    let with = crate::edge::names::user(&query.with)?;
    let limit = Limit::parse(query.limit, 50, 100).map_err(|err| AppError::invalid_field("limit", err.to_string()))?;
    let page = messages::conversation(&state, user.0, &with, limit, query.cursor.as_deref()).await?;
    Ok(HttpResponse::Ok().json(page))
}

/// `POST /api/v1/messages/{id}/report`
#[utoipa::path(
    post,
    path = "/api/v1/messages/{id}/report",
    tag = "messages",
    params(("id" = i64, Path)),
    request_body = WhyBody,
    responses(
        (status = 201, description = "reported to the site admins; the body holds the new report id", body = serde_json::Value),
        (status = 404, description = "not_found: no such message in the caller's inbox", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: a reason is needed (a message has no community rules)", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn report(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
    body: JsonBody<WhyBody>,
) -> Result<HttpResponse, AppError> {
    let id = messages::report(&state, user.0, id.into_inner(), body.parse()?).await?;
    Ok(HttpResponse::Created().json(json!({"id": id})))
}
