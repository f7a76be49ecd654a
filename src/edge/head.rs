//! Edge rules that apply before routing: the request-head size limit and CORS for the API.
//!
//! CORS is closed unless `server.cors_allowed_origins` lists the caller's origin. The API
//! authenticates with bearer tokens, never cookies, so an allowed origin gets no
//! `Access-Control-Allow-Credentials`; pages are same-origin and never need CORS.

use actix_web::HttpResponse;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::web;

use crate::edge::HttpState;
use crate::error::{AppError, ErrorCode};

/// Methods an allowed origin may use on the API.
const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
/// Request headers an allowed origin may send.
const ALLOWED_HEADERS: &str = "authorization, content-type, idempotency-key, x-request-id, traceparent";
/// Response headers scripts of an allowed origin may read.
const EXPOSED_HEADERS: &str =
    "x-request-id, location, retry-after, ratelimit-limit, ratelimit-remaining, ratelimit-reset, idempotency-replayed";

/// Refuses a request whose head (request line and headers) is larger than
/// `server.max_header_bytes` with 431, then applies CORS to `/api/` paths.
pub async fn edge(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<HttpState>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let limit = state.config.server.max_header_bytes;
    let head_bytes = head_size(&req);
    if head_bytes > limit {
        let error = AppError::new(
            ErrorCode::HeadersTooLarge,
            format!("the request head is {head_bytes} bytes; at most {limit} are accepted"),
        );
        return Ok(req.error_response(error));
    }

    let origin = req.headers().get(header::ORIGIN).cloned();
    let api = req.path().starts_with("/api/");
    let Some(origin) = origin.filter(|_| api) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let allowed = origin.to_str().is_ok_and(|o| state.config.server.cors_allows(o));
    let preflight =
        req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);

    if preflight {
        if !allowed {
            let error = AppError::new(ErrorCode::OriginNotAllowed, "this origin may not call the API from a browser");
            return Ok(req.error_response(error));
        }
        let max_age = state.config.server.cors_max_age_seconds.to_string();
        let response = HttpResponse::build(StatusCode::NO_CONTENT)
            .insert_header((header::ACCESS_CONTROL_ALLOW_ORIGIN, origin))
            .insert_header((header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS))
            .insert_header((header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS))
            .insert_header((header::ACCESS_CONTROL_MAX_AGE, max_age))
            .insert_header((header::VARY, "origin"))
            .finish();
        return Ok(req.into_response(response));
    }

    let mut response = next.call(req).await?.map_into_boxed_body();
    if allowed {
        let headers = response.headers_mut();
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
        headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
    }
    // Whether CORS headers appear depends on Origin, so caches must key on it either way.
    append_vary(response.headers_mut(), "origin");
    Ok(response)
}

/// Paths whose responses carry secrets (access and refresh tokens).
const SECRET_BEARING_PREFIX: &str = "/api/v1/auth/";

/// Keeps responses that carry tokens uncompressed, so their length cannot leak a secret to an
/// attacker who also controls part of the request (BREACH). Runs outside the compressor:
/// without `Accept-Encoding` it sends the body as is.
pub async fn keep_secrets_uncompressed(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if req.path().starts_with(SECRET_BEARING_PREFIX) {
        req.headers_mut().remove(header::ACCEPT_ENCODING);
    }
    next.call(req).await
}

/// The bytes of the request line and header fields as they arrived (`name: value\r\n` each).
fn head_size(req: &ServiceRequest) -> usize {
    let line = req.method().as_str().len() + req.uri().to_string().len() + 12;
    req.headers().iter().map(|(name, value)| name.as_str().len() + value.len() + 4).sum::<usize>() + line
}

/// Adds `token` to the `Vary` header unless it is already there.
pub fn append_vary(headers: &mut HeaderMap, token: &str) {
    let current = headers.get(header::VARY).and_then(|v| v.to_str().ok()).map(str::to_ascii_lowercase);
    let value = match current {
        Some(v) if v.split(',').any(|t| t.trim() == token || t.trim() == "*") => return,
        Some(v) => format!("{v}, {token}"),
        None => token.to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(header::VARY, value);
    }
}
