//! RFC 9457 problem+json: the one place error kinds become HTTP statuses and bodies.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpRequest, HttpResponse, ResponseError, error};
use serde::Serialize;

use crate::error::{AppError, ErrorCode, FieldError};

/// The media type of every error body.
pub const PROBLEM_JSON: &str = "application/problem+json";

/// The body of an error response.
#[derive(Debug, Clone, Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Problem {
    /// A URI naming the problem type: `urn:agora:problem:<code>`.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// The HTTP status phrase.
    pub title: String,
    /// The HTTP status code.
    pub status: u16,
    /// What went wrong, for people.
    pub detail: String,
    /// A stable machine-readable code.
    pub code: String,
    /// Invalid fields of a validation error.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The request id, to quote when reporting the problem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

impl Problem {
    /// A problem with the given status, code and detail.
    pub fn new(status: StatusCode, code: &str, detail: impl Into<String>) -> Self {
        Self {
            type_uri: format!("urn:agora:problem:{code}"),
            title: status.canonical_reason().unwrap_or("Error").to_owned(),
            status: status.as_u16(),
            detail: detail.into(),
            code: code.to_owned(),
            errors: Vec::new(),
            request_id: None,
        }
    }

    /// The problem for a bare error status produced by the framework (unknown route, wrong
    /// method, ...), where no [`AppError`] said more.
    pub fn from_status(status: StatusCode, method: &str, path: &str) -> Self {
        let code = ErrorCode::for_status(status.as_u16());
        let detail = match code {
            ErrorCode::NotFound => format!("no resource at {path}"),
            ErrorCode::MethodNotAllowed => format!("{path} does not accept {method}"),
            ErrorCode::PayloadTooLarge => "the request body is too large".to_owned(),
            ErrorCode::UnsupportedMediaType => "unsupported content type".to_owned(),
            ErrorCode::HeadersTooLarge => "the request headers are too large".to_owned(),
            ErrorCode::Unauthorized => "authentication required".to_owned(),
            ErrorCode::Forbidden => "not allowed".to_owned(),
            ErrorCode::ServiceUnavailable => "temporarily unavailable".to_owned(),
            ErrorCode::InsufficientStorage => "the disk is full".to_owned(),
            ErrorCode::InternalError => "internal error".to_owned(),
            _ => "the request could not be processed".to_owned(),
        };
        Self::new(status, code.as_str(), detail)
    }

    /// Serializes the problem into a response body.
    pub fn to_body(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| {
            format!("{{\"status\":{},\"code\":\"{}\",\"title\":\"Error\"}}", self.status, self.code)
        })
    }
}

/// The `Retry-After` (seconds) of a refusal that passes by itself: 5 after a 503 (the database,
/// or its primary, is away; pools reconnect by themselves), 60 after a 507 (a disk is full;
/// someone has to free space).
pub fn retry_after(code: ErrorCode) -> Option<&'static str> {
    match code {
        ErrorCode::ServiceUnavailable => Some("5"),
        ErrorCode::InsufficientStorage => Some("60"),
        _ => None,
    }
}

/// The HTTP status of an error code.
pub fn status_of(code: ErrorCode) -> StatusCode {
    StatusCode::from_u16(code.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        status_of(self.code)
    }

    /// The problem rides in the response's extensions; `edge::middleware::observe` adds the
    /// request id and serializes it, once.
    fn error_response(&self) -> HttpResponse {
        let status = self.status_code();
        log_error(self);
        let mut problem = Problem::new(status, self.code.as_str(), &self.detail);
        problem.errors.clone_from(&self.errors);
        let mut response = HttpResponse::build(status)
            .insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)))
            .finish();
        if let Some(seconds) = retry_after(self.code) {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static(seconds));
        }
        response.extensions_mut().insert(problem);
        response
    }
}

/// Logs an error answered to a client: server errors with their cause chain, refusals at debug.
pub fn log_error(error: &AppError) {
    let status = status_of(error.code);
    let cause = error.source.as_ref().map(|s| error_chain(s.as_ref()));
    let location = format!("{}:{}", error.location.file(), error.location.line());
    if status.is_server_error() {
        tracing::error!(code = error.code.as_str(), detail = %error.detail, cause, location, "request failed");
    } else {
        tracing::debug!(code = error.code.as_str(), detail = %error.detail, cause, location, "request refused");
    }
}

fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut next = err.source();
    while let Some(cause) = next {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        next = cause.source();
    }
    text
}

/// Turns JSON body failures into 415, 413, 400 (malformed) or 422 (well-formed, wrong shape).
pub fn json_error(err: error::JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    use error::JsonPayloadError as E;
    let app_error = match &err {
        E::ContentType => AppError::new(ErrorCode::UnsupportedMediaType, "the body must be application/json"),
        E::Overflow { limit } | E::OverflowKnownLength { limit, .. } => {
            AppError::new(ErrorCode::PayloadTooLarge, format!("the body is larger than {limit} bytes"))
        }
        E::Deserialize(json) if json.is_data() => {
            AppError::validation(vec![FieldError { field: "body".into(), message: json.to_string() }])
        }
        E::Deserialize(json) => AppError::bad_request(format!("malformed JSON: {json}")),
        other => AppError::bad_request(format!("cannot read the body: {other}")),
    };
    app_error.into()
}

/// Path parameters that do not parse (a non-numeric or out-of-range id) are a 400.
pub fn path_error(err: error::PathError, _req: &HttpRequest) -> actix_web::Error {
    let detail = match &err {
        error::PathError::Deserialize(inner) => format!("invalid path parameter: {inner}"),
        other => format!("invalid path parameter: {other}"),
    };
    AppError::bad_request(detail).into()
}

/// Query strings that do not parse are a 422 naming the problem.
pub fn query_error(err: error::QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    AppError::validation(vec![FieldError { field: "query".into(), message: err.to_string() }]).into()
}
