//! `/api/v1/auth/*`, `/api/v1/me`: thin handlers over `service::accounts`.

use crate::edge::problem::Problem;
use crate::service::accounts::{OwnUser, SignedIn, TokenPair};
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::domain::{Bio, EmailAddress, NotificationSettings, Password, Username};
use crate::edge::HttpState;
use crate::edge::caller::user_agent;
use crate::error::AppError;
use crate::error::Fields;
use crate::http::auth::CurrentUser;
use crate::http::body::JsonBody;
use crate::service::accounts::{self, NewAccount, ProfileUpdate};

/// Body of `POST /auth/register`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    /// 3 to 20 letters, digits or underscores.
    #[schema(pattern = r"^[A-Za-z0-9_]{3,20}$")]
    username: String,
    /// An address such as name@example.com.
    #[schema(
        max_length = 254,
        pattern = r"^[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f]+@[^@.\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f][^@\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f]*\.[^@\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f]*[^@.\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f][\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    email: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128, pattern = r"^[^\u0000]*$")]
    password: String,
}

/// Body of `POST /auth/login`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginBody {
    login: String,
    password: String,
}

/// Body of `POST /auth/refresh`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefreshBody {
    refresh_token: String,
}

/// Body of `POST /auth/password-reset`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PasswordResetBody)]
pub struct ResetRequestBody {
    /// The account's address.
    #[schema(
        max_length = 254,
        pattern = r"^[\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^@\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f]+@[^@.\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f][^@\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f]*\.[^@\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f]*[^@.\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\u0000-\u001f\u007f-\u009f][\t\n\u000b\u000c\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    )]
    email: String,
}

/// Body of `POST /auth/password-reset/confirm`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = PasswordResetConfirmBody)]
pub struct ResetConfirmBody {
    token: String,
    /// 8 to 128 characters.
    #[schema(min_length = 8, max_length = 128, pattern = r"^[^\u0000]*$")]
    new_password: String,
}

/// Body of `PATCH /me`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMeBody {
    /// Markdown, at most 10,000 characters.
    #[schema(max_length = 10000, pattern = r"^[^\u0000]*$")]
    bio: Option<String>,
    notification_settings: Option<NotificationSettings>,
    /// A ready upload of the caller's to show as their avatar; null removes it.
    #[serde(default, deserialize_with = "present_or_null")]
    #[schema(value_type = Option<i64>)]
    avatar_id: Option<Option<i64>>,
    /// Show NSFW images unblurred in the pages.
    show_nsfw: Option<bool>,
    /// Replaces the filtered keywords (at most 50, each at most 60 characters): posts whose
    /// title holds one, as whole words ignoring case, leave the caller's listings.
    #[schema(max_items = 50)]
    filtered_keywords: Option<Vec<String>>,
}

/// Tells a field that is absent (`None`) from one set to null (`Some(None)`).
fn present_or_null<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Option<i64>>, D::Error> {
    crate::http::integers::optional_integer(deserializer).map(Some)
}

/// `POST /api/v1/auth/register`
#[utoipa::path(
    post,
    path = "/api/v1/auth/register",
    tag = "accounts",
    request_body = RegisterBody,
    responses(
        (status = 201, description = "signed in as the new user", body = SignedIn),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "username_taken or email_taken", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn register(
    state: web::Data<HttpState>,
    req: HttpRequest,
    body: JsonBody<RegisterBody>,
) -> Result<HttpResponse, AppError> {
    let mut fields = Fields::default();
    let username = fields.check("username", Username::parse(&body.username));
    let email = fields.check("email", EmailAddress::parse(&body.email));
    let password = fields.check("password", Password::parse(&body.password));
    let input = fields.finish(username.zip(email).zip(password).map(|((username, email), password)| NewAccount {
        username,
        email,
        password,
    }))?;
    let signed_in = accounts::register(&state, input, &user_agent(&req)).await?;
    Ok(HttpResponse::Created().json(signed_in))
}

/// `POST /api/v1/auth/login`
#[utoipa::path(
    post,
    path = "/api/v1/auth/login",
    tag = "accounts",
    request_body = LoginBody,
    responses(
        (status = 200, description = "signed in", body = SignedIn),
        (status = 401, description = "invalid_credentials (same answer for unknown users and wrong passwords)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn login(
    state: web::Data<HttpState>,
    req: HttpRequest,
    body: JsonBody<LoginBody>,
) -> Result<HttpResponse, AppError> {
    let signed_in = accounts::login(&state, body.login.trim(), &body.password, &user_agent(&req)).await?;
    Ok(HttpResponse::Ok().json(signed_in))
}

/// `POST /api/v1/auth/refresh`
#[utoipa::path(
    post,
    path = "/api/v1/auth/refresh",
    tag = "accounts",
    request_body = RefreshBody,
    responses(
        (status = 200, description = "a new token pair; the old refresh token is spent", body = TokenPair),
        (status = 401, description = "invalid_token; reusing a spent refresh token revokes every token of that login", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn refresh(state: web::Data<HttpState>, body: JsonBody<RefreshBody>) -> Result<HttpResponse, AppError> {
    let pair = accounts::refresh(&state, &body.refresh_token).await?;
    Ok(HttpResponse::Ok().json(pair))
}

/// `POST /api/v1/auth/logout`
#[utoipa::path(
    post,
    path = "/api/v1/auth/logout",
    tag = "accounts",
    responses(
        (status = 204, description = "signed out: the access and refresh tokens of this login stop working at once")
    ),
    security(("bearer" = []))
)]
pub async fn logout(state: web::Data<HttpState>, user: CurrentUser) -> Result<HttpResponse, AppError> {
    accounts::logout(&state, user.0).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `POST /api/v1/auth/password-reset`
#[utoipa::path(
    post,
    path = "/api/v1/auth/password-reset",
    tag = "accounts",
    request_body = ResetRequestBody,
    responses(
        (status = 202, description = "accepted, whether or not the address has an account"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn request_password_reset(
    state: web::Data<HttpState>,
    body: JsonBody<ResetRequestBody>,
) -> Result<HttpResponse, AppError> {
    let email = EmailAddress::parse(&body.email).map_err(|err| AppError::invalid_field("email", err.to_string()))?;
    accounts::request_password_reset(&state, &email).await?;
    Ok(HttpResponse::Accepted().finish())
}

/// `POST /api/v1/auth/password-reset/confirm`
#[utoipa::path(
    post,
    path = "/api/v1/auth/password-reset/confirm",
    tag = "accounts",
    request_body = ResetConfirmBody,
    responses(
        (status = 204, description = "password changed; every login of the user is revoked"),
        (status = 400, description = "invalid_token", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors`", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn confirm_password_reset(
    state: web::Data<HttpState>,
    body: JsonBody<ResetConfirmBody>,
) -> Result<HttpResponse, AppError> {
    let password =
        Password::parse(&body.new_password).map_err(|err| AppError::invalid_field("new_password", err.to_string()))?;
    accounts::confirm_password_reset(&state, &body.token, &password).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /api/v1/me`
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "accounts",
    responses(
        (status = 200, description = "the caller", body = OwnUser)
    ),
    security(("bearer" = []))
)]
pub async fn me(state: web::Data<HttpState>, user: CurrentUser) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(accounts::me(&state, user.0).await?))
}

/// `PATCH /api/v1/me`
#[utoipa::path(
    patch,
    path = "/api/v1/me",
    tag = "accounts",
    request_body = UpdateMeBody,
    responses(
        (status = 200, description = "the caller, updated", body = OwnUser),
        (status = 403, description = "forbidden: avatar_id does not name one of the caller's uploads", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "validation_failed: invalid fields, listed in `errors` (an avatar still processing, or failed)", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn update_me(
    state: web::Data<HttpState>,
    user: CurrentUser,
    body: JsonBody<UpdateMeBody>,
) -> Result<HttpResponse, AppError> {
    let body = body.into_inner();
    let bio = body
        .bio
        .as_deref()
        .map(Bio::parse)
        .transpose()
        .map_err(|err| AppError::invalid_field("bio", err.to_string()))?;
    let filtered_keywords = body
        .filtered_keywords
        .as_deref()
        .map(crate::domain::reader::FilteredKeywords::parse)
        .transpose()
        .map_err(|err| AppError::invalid_field("filtered_keywords", err.to_string()))?;
    let update = ProfileUpdate {
        filtered_keywords,
        bio,
        notification_settings: body.notification_settings,
        avatar_id: body.avatar_id,
        show_nsfw: body.show_nsfw,
    };
    Ok(HttpResponse::Ok().json(accounts::update_me(&state, user.0, update).await?))
}

/// Query of `/unsubscribe`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UnsubscribeQuery {
    /// The signed token from the email's link.
    token: String,
}

/// `GET|POST /api/v1/unsubscribe?token=…`: the link in notification emails (POST is the
/// one-click form of RFC 8058 that mail clients use).
#[utoipa::path(
    method(get, post),
    path = "/api/v1/unsubscribe",
    tag = "accounts",
    params(UnsubscribeQuery),
    responses(
        (status = 200, description = "the topic is off", body = accounts::Unsubscribed),
        (status = 400, description = "invalid_token: the link is invalid or expired", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn unsubscribe(
    state: web::Data<HttpState>,
    query: web::Query<UnsubscribeQuery>,
) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(accounts::unsubscribe(&state, &query.token).await?))
}
