//! The one error type services return, with a stable machine-readable code per kind.
//!
//! Each code carries its status; `edge::problem` turns an error into a problem body once; the cause chain and the place
//! the error was raised go to the log, never to the client.

use std::panic::Location;

/// Every `code` a problem body carries (API.md names them; they are part of the contract),
/// each with the one HTTP status it is answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    /// The request could not be parsed or used.
    BadRequest,
    /// The token of an emailed link (password reset, unsubscribe) is invalid, spent or expired.
    InvalidLinkToken,
    /// No usable credentials.
    Unauthorized,
    /// Wrong login or password (the same answer for unknown users).
    InvalidCredentials,
    /// A refresh or access token is invalid, spent or expired.
    InvalidToken,
    /// A known user lacks a right.
    Forbidden,
    /// The user is banned from the community.
    Banned,
    /// The recipient blocks the sender: the message is refused.
    Blocked,
    /// The post is locked: no new comments.
    Locked,
    /// Summaries are off for this community.
    SummariesDisabled,
    /// A page form was sent from another site.
    CrossOrigin,
    /// A page form came without a valid CSRF token.
    CsrfFailed,
    /// A CORS preflight from an origin not in `server.cors_allowed_origins`.
    OriginNotAllowed,
    /// The resource does not exist.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// Registration with a username in use.
    UsernameTaken,
    /// Registration with an email address in use.
    EmailTaken,
    /// A community of that name exists.
    CommunityExists,
    /// A request with this Idempotency-Key is still running.
    IdempotencyKeyInUse,
    /// The body is larger than allowed.
    PayloadTooLarge,
    /// The body's media type is not accepted here.
    UnsupportedMediaType,
    /// Some values are invalid; `errors` lists them.
    ValidationFailed,
    /// A reply would nest deeper than comments may.
    MaxDepthExceeded,
    /// The Idempotency-Key was used for a different request.
    IdempotencyKeyReused,
    /// An upload has more pixels or a longer side than allowed.
    ImageTooLarge,
    /// Too many requests; `Retry-After` says when to come back.
    RateLimited,
    /// The request line and headers together are larger than allowed.
    HeadersTooLarge,
    /// A bug or an unexpected failure.
    InternalError,
    /// A dependency (the database) is unavailable; retrying later may work.
    ServiceUnavailable,
    /// A write was refused because a disk Agora writes to is full; it works again once
    /// space is freed.
    InsufficientStorage,
}

impl ErrorCode {
    /// Every code, for the documentation and the tests.
    pub const ALL: [Self; 30] = [
        Self::BadRequest,
        Self::InvalidLinkToken,
        Self::Unauthorized,
        Self::InvalidCredentials,
        Self::InvalidToken,
        Self::Forbidden,
        Self::Banned,
        Self::Blocked,
        Self::Locked,
        Self::SummariesDisabled,
        Self::CrossOrigin,
        Self::CsrfFailed,
        Self::OriginNotAllowed,
        Self::NotFound,
        Self::MethodNotAllowed,
        Self::UsernameTaken,
        Self::EmailTaken,
        Self::CommunityExists,
        Self::IdempotencyKeyInUse,
        Self::PayloadTooLarge,
        Self::UnsupportedMediaType,
        Self::ValidationFailed,
        Self::MaxDepthExceeded,
        Self::IdempotencyKeyReused,
        Self::ImageTooLarge,
        Self::RateLimited,
        Self::HeadersTooLarge,
        Self::InternalError,
        Self::ServiceUnavailable,
        Self::InsufficientStorage,
    ];

    /// The `code` on the wire (snake_case).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::InvalidLinkToken => "invalid_token",
            Self::Unauthorized => "unauthorized",
            Self::InvalidCredentials => "invalid_credentials",
            Self::InvalidToken => "invalid_token",
            Self::Forbidden => "forbidden",
            Self::Banned => "banned",
            Self::Blocked => "blocked",
            Self::Locked => "locked",
            Self::SummariesDisabled => "summaries_disabled",
            Self::CrossOrigin => "cross_origin",
            Self::CsrfFailed => "csrf_failed",
            Self::OriginNotAllowed => "origin_not_allowed",
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::UsernameTaken => "username_taken",
            Self::EmailTaken => "email_taken",
            Self::CommunityExists => "community_exists",
            Self::IdempotencyKeyInUse => "idempotency_key_in_use",
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::ValidationFailed => "validation_failed",
            Self::MaxDepthExceeded => "max_depth_exceeded",
            Self::IdempotencyKeyReused => "idempotency_key_reused",
            Self::ImageTooLarge => "image_too_large",
            Self::RateLimited => "rate_limited",
            Self::HeadersTooLarge => "headers_too_large",
            Self::InternalError => "internal_error",
            Self::ServiceUnavailable => "service_unavailable",
            Self::InsufficientStorage => "insufficient_storage",
        }
    }

    /// The code of a bare error status the framework answered (an unknown route, a wrong
    /// method), where nothing said more.
    pub fn for_status(status: u16) -> Self {
        match status {
            401 => Self::Unauthorized,
            403 => Self::Forbidden,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            429 => Self::RateLimited,
            431 => Self::HeadersTooLarge,
            503 => Self::ServiceUnavailable,
            507 => Self::InsufficientStorage,
            500..=599 => Self::InternalError,
            _ => Self::BadRequest,
        }
    }

    /// The HTTP status it is answered with.
    pub fn status(self) -> u16 {
        match self {
            Self::BadRequest => 400,
            Self::InvalidLinkToken => 400,
            Self::Unauthorized => 401,
            Self::InvalidCredentials => 401,
            Self::InvalidToken => 401,
            Self::Forbidden => 403,
            Self::Banned => 403,
            Self::Blocked => 403,
            Self::Locked => 403,
            Self::SummariesDisabled => 403,
            Self::CrossOrigin => 403,
            Self::CsrfFailed => 403,
            Self::OriginNotAllowed => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::UsernameTaken => 409,
            Self::EmailTaken => 409,
            Self::CommunityExists => 409,
            Self::IdempotencyKeyInUse => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::ValidationFailed => 422,
            Self::MaxDepthExceeded => 422,
            Self::IdempotencyKeyReused => 422,
            Self::ImageTooLarge => 422,
            Self::RateLimited => 429,
            Self::HeadersTooLarge => 431,
            Self::InternalError => 500,
            Self::ServiceUnavailable => 503,
            Self::InsufficientStorage => 507,
        }
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field name as the client sent it.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An error from a service: a kind, a message safe to show, and the internal cause.
#[derive(Debug)]
pub struct AppError {
    /// What went wrong, as clients need to know it.
    pub code: ErrorCode,
    /// A message for the client (lower case, no trailing period).
    pub detail: String,
    /// Per-field problems of a validation error.
    pub errors: Vec<FieldError>,
    /// The internal cause, logged but never shown.
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
    /// Where the error was raised.
    pub location: &'static Location<'static>,
}

impl AppError {
    /// An error with `code` and a client-facing message.
    #[track_caller]
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self { code, detail: detail.into(), errors: Vec::new(), source: None, location: Location::caller() }
    }

    /// A 404 for the named resource.
    #[track_caller]
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{what} not found"))
    }

    /// A 400 `bad_request`.
    #[track_caller]
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::BadRequest, detail)
    }

    /// A 401 `unauthorized`: no usable credentials.
    #[track_caller]
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, detail)
    }

    /// A 403 `forbidden`.
    #[track_caller]
    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Forbidden, detail)
    }

    /// A 422 for one invalid field.
    #[track_caller]
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::validation(vec![FieldError { field: field.to_owned(), message: message.into() }])
    }

    /// A validation error listing the invalid fields.
    #[track_caller]
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; ");
        Self { errors, ..Self::new(ErrorCode::ValidationFailed, detail) }
    }

    /// An unexpected failure; the cause is logged, the client sees a generic message.
    #[track_caller]
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self { source: Some(Box::new(source)), ..Self::new(ErrorCode::InternalError, "internal error") }
    }
}

/// Collects field errors so one response names every invalid field.
#[derive(Default)]
pub struct Fields(Vec<FieldError>);

impl Fields {
    /// The parsed value, or `None` after recording why `field` is invalid.
    pub fn check<T, E: std::fmt::Display>(&mut self, field: &str, result: Result<T, E>) -> Option<T> {
        result.map_err(|err| self.0.push(FieldError { field: field.into(), message: err.to_string() })).ok()
    }

    /// The value when every field was valid, else a 422 naming all invalid fields.
    pub fn finish<T>(self, value: Option<T>) -> Result<T, AppError> {
        match value {
            Some(value) if self.0.is_empty() => Ok(value),
            _ => Err(AppError::validation(self.0)),
        }
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)?;
        if let Some(source) = &self.source {
            write!(f, " (caused by: {source})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    #[test]
    fn every_code_is_snake_case_with_an_error_status_and_one_status_per_variant() {
        for code in ErrorCode::ALL {
            let text = code.as_str();
            assert!(!text.is_empty() && text.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'), "{text}");
            assert!((400..=599).contains(&code.status()), "{text}");
        }
        let mut pairs: Vec<(&str, u16)> = ErrorCode::ALL.iter().map(|c| (c.as_str(), c.status())).collect();
        pairs.sort_unstable();
        pairs.dedup();
        assert_eq!(pairs.len(), ErrorCode::ALL.len(), "no two variants answer the same code with the same status");
    }

    #[test]
    fn a_bare_framework_status_gets_the_generic_code_of_that_status() {
        for status in [401, 403, 404, 405, 413, 415, 429, 431, 503, 500] {
            assert_eq!(ErrorCode::for_status(status).status(), status);
        }
        assert_eq!(ErrorCode::for_status(502), ErrorCode::InternalError);
        assert_eq!(ErrorCode::for_status(418), ErrorCode::BadRequest);
    }
}
