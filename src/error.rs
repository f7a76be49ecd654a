//! The one error type services return, with a stable machine-readable code per kind.
//!
//! The HTTP layer maps kinds to statuses once (`http::problem`); the cause chain and the place
//! the error was raised go to the log, never to the client.

use std::panic::Location;

/// What went wrong, as clients need to know it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// The request could not be parsed or used; the code says how (`bad_request`, `invalid_token`).
    BadRequest(&'static str),
    /// The request parsed but some values are invalid.
    Validation,
    /// The request is valid but cannot be carried out; the code says why (`max_depth_exceeded`,
    /// `idempotency_key_reused`).
    Unprocessable(&'static str),
    /// Missing or bad credentials; the code says which (`unauthorized`, `invalid_credentials`,
    /// `invalid_token`).
    Unauthorized(&'static str),
    /// A known user lacks a right; the code says which (`forbidden`, `banned`, `locked`).
    Forbidden(&'static str),
    /// The resource does not exist.
    NotFound,
    /// The route exists but not with this method.
    MethodNotAllowed,
    /// The request conflicts with existing state; the code says how (`username_taken`, ...).
    Conflict(&'static str),
    /// The body is larger than allowed.
    PayloadTooLarge,
    /// The body's media type is not accepted here.
    UnsupportedMediaType,
    /// The request line and headers together are larger than allowed.
    HeadersTooLarge,
    /// Too many requests; `Retry-After` says when to come back.
    RateLimited,
    /// A dependency (the database) is unavailable; retrying later may work.
    Unavailable,
    /// A bug or an unexpected failure.
    Internal,
}

impl ErrorKind {
    /// The stable `code` of the problem body.
    pub fn code(&self) -> &'static str {
        match self {
            Self::BadRequest(code) => code,
            Self::Validation => "validation_failed",
            Self::Unprocessable(code) => code,
            Self::Unauthorized(code) => code,
            Self::Forbidden(code) => code,
            Self::NotFound => "not_found",
            Self::MethodNotAllowed => "method_not_allowed",
            Self::Conflict(code) => code,
            Self::PayloadTooLarge => "payload_too_large",
            Self::UnsupportedMediaType => "unsupported_media_type",
            Self::HeadersTooLarge => "headers_too_large",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "service_unavailable",
            Self::Internal => "internal_error",
        }
    }
}

/// One invalid field of a request.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct FieldError {
    /// The field name as the client sent it.
    pub field: String,
    /// What is wrong with it.
    pub message: String,
}

/// An error from a service: a kind, a message safe to show, and the internal cause.
#[derive(Debug)]
pub struct AppError {
    /// What went wrong.
    pub kind: ErrorKind,
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
    /// An error of `kind` with a client-facing message.
    #[track_caller]
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        Self { kind, detail: detail.into(), errors: Vec::new(), source: None, location: Location::caller() }
    }

    /// A 404 for the named resource.
    #[track_caller]
    pub fn not_found(what: &str) -> Self {
        Self::new(ErrorKind::NotFound, format!("{what} not found"))
    }

    /// A 400 `bad_request`.
    #[track_caller]
    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::BadRequest("bad_request"), detail)
    }

    /// A 401 `unauthorized`: no usable credentials.
    #[track_caller]
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unauthorized("unauthorized"), detail)
    }

    /// A 403 `forbidden` (or another 403 code such as `banned` or `locked`).
    #[track_caller]
    pub fn forbidden(code: &'static str, detail: impl Into<String>) -> Self {
        Self::new(ErrorKind::Forbidden(code), detail)
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
        Self { errors, ..Self::new(ErrorKind::Validation, detail) }
    }

    /// An unexpected failure; the cause is logged, the client sees a generic message.
    #[track_caller]
    pub fn internal(source: impl std::error::Error + Send + Sync + 'static) -> Self {
        Self { source: Some(Box::new(source)), ..Self::new(ErrorKind::Internal, "internal error") }
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
        write!(f, "{}: {}", self.kind.code(), self.detail)?;
        if let Some(source) = &self.source {
            write!(f, " (caused by: {source})")?;
        }
        Ok(())
    }
}

impl std::error::Error for AppError {}
