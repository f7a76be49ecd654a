//! The request middleware every route runs through: request id, server span (continuing an
//! inbound W3C `traceparent`), RED metrics by route template, the access log line, and
//! problem+json bodies for every error response.

use std::time::Instant;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, web};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::edge::HttpState;
use crate::edge::problem::{PROBLEM_JSON, Problem};
use crate::metrics::{Metrics, UNMATCHED_ROUTE};

/// The request id header, echoed when the client sent a usable one.
pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The id of the current request, available to handlers as a request extension.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    /// The client's id when it is 1–128 visible ASCII characters, else a new UUIDv7.
    fn from_headers(headers: &HeaderMap) -> Self {
        let client = headers
            .get(&REQUEST_ID)
            .and_then(|v| v.to_str().ok())
            .filter(|v| !v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()));
        Self(client.map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned))
    }
}

/// Methods are a metric label: anything outside the standard set is `_OTHER`, as the
/// OpenTelemetry HTTP conventions say, so arbitrary methods cannot create series.
fn method_label(method: &actix_web::http::Method) -> &'static str {
    match method.as_str() {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        "CONNECT" => "CONNECT",
        "TRACE" => "TRACE",
        _ => "_OTHER",
    }
}

struct HeaderExtractor<'a>(&'a HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// See the module documentation.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    // The state is one Arc; cloning it is cheaper than cloning the metrics' many handles.
    let state = req.app_data::<web::Data<HttpState>>().cloned();
    let metrics = state.as_ref().map(|state| &state.metrics);
    let request_id = RequestId::from_headers(req.headers());
    req.extensions_mut().insert(request_id.clone());
    let method = method_label(req.method());
    let route = req.match_pattern().unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());

    let span = tracing::info_span!(
        "http_request",
        otel.name = %format!("{method} {route}"),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = method,
        http.route = %route,
        url.path = %req.path(),
        http.response.status_code = tracing::field::Empty,
        request_id = %request_id.0,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
    );
    let parent = TraceContextPropagator::new().extract(&HeaderExtractor(req.headers()));
    let inbound_trace = parent.span().span_context().clone();
    let _ = span.set_parent(parent);
    let own = span.context().span().span_context().clone();
    if own.is_valid() {
        span.record("trace_id", own.trace_id().to_string());
        span.record("span_id", own.span_id().to_string());
    } else if inbound_trace.is_valid() {
        // Export is off: still log the caller's trace id so logs join the caller's trace.
        span.record("trace_id", inbound_trace.trace_id().to_string());
    }

    let _active = metrics.as_ref().map(|m| ActiveRequest::start(m, method));
    let started = Instant::now();
    // Handlers and extractors turn their errors into responses themselves, so an `Err` here
    // means a failure inside actix-web's own machinery: count it and let actix-web answer.
    // (The request cannot be cloned beforehand to build a response: routing needs it unshared.)
    let response = match next.call(req).instrument(span.clone()).await {
        Ok(response) => response.map_into_boxed_body(),
        Err(err) => {
            if let Some(metrics) = &metrics {
                metrics
                    .http_request_duration
                    .with_label_values(&[method, route.as_str(), "500"])
                    .observe(started.elapsed().as_secs_f64());
            }
            span.in_scope(|| tracing::error!(error = %err, "request failed inside the framework"));
            return Err(err);
        }
    };
    let mut response = with_problem_body(response, &request_id);
    if let Ok(value) = HeaderValue::from_str(&request_id.0) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    add_security_headers(response.headers_mut());
    let hsts_max_age = response
        .request()
        .app_data::<web::Data<HttpState>>()
        .filter(|state| state.tls.is_some())
        .map_or(0, |state| state.config.tls.hsts_max_age_seconds);
    if hsts_max_age > 0
        && response.request().connection_info().scheme() == "https"
        && let Ok(value) = HeaderValue::from_str(&format!("max-age={hsts_max_age}; includeSubDomains"))
    {
        response.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, value);
    }

    let status = response.status();
    let route = response.request().match_pattern().unwrap_or_else(|| UNMATCHED_ROUTE.to_owned());
    let elapsed = started.elapsed();
    if let Some(metrics) = &metrics {
        metrics
            .http_request_duration
            .with_label_values(&[method, route.as_str(), status.as_str()])
            .observe(elapsed.as_secs_f64());
        if status == StatusCode::INSUFFICIENT_STORAGE {
            metrics.writes_refused_disk_full.inc();
        }
    }
    span.record("http.response.status_code", i64::from(status.as_u16()));
    if status.is_server_error() {
        span.record("otel.status_code", "error");
    }
    span.in_scope(|| {
        let duration_ms = elapsed.as_secs_f64() * 1000.0;
        if status.is_server_error() {
            tracing::warn!(status = status.as_u16(), duration_ms, "request completed");
        } else {
            tracing::info!(status = status.as_u16(), duration_ms, "request completed");
        }
    });
    Ok(response)
}

struct ActiveRequest(prometheus::IntGauge);

impl ActiveRequest {
    fn start(metrics: &Metrics, method: &str) -> Self {
        let gauge = metrics.http_active_requests.with_label_values(&[method]);
        gauge.inc();
        Self(gauge)
    }
}

impl Drop for ActiveRequest {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Gives every 4xx/5xx response a problem+json body carrying the request id: the [`Problem`]
/// an [`crate::error::AppError`] left in the response (serialized here, once), or for a bare
/// framework error (an empty body, or actix's own plain-text one) a problem made from its
/// status. Bodies a handler wrote itself (readiness, pages, replays) are left alone.
fn with_problem_body(response: ServiceResponse<BoxBody>, request_id: &RequestId) -> ServiceResponse<BoxBody> {
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return response;
    }
    let existing = response.response().extensions().get::<Problem>().cloned();
    let mut problem = match existing {
        Some(problem) => problem,
        None if is_framework_body(&response) => {
            let request = response.request();
            Problem::from_status(status, request.method().as_str(), request.path())
        }
        None => return response,
    };
    problem.request_id = Some(request_id.0.clone());
    let body = problem.to_body();
    response.map_body(move |head, _old_body| {
        head.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON));
        BoxBody::new(body)
    })
}

/// Whether an error response's body is actix's own: none at all, or its plain-text message.
fn is_framework_body(response: &ServiceResponse<BoxBody>) -> bool {
    use actix_web::body::BodySize;
    let empty = matches!(response.response().body().size(), BodySize::None | BodySize::Sized(0));
    let plain_text = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_none_or(|v| v.starts_with("text/plain"));
    empty || plain_text
}

/// Headers that keep browsers from sniffing, framing or leaking what Agora serves. Set on
/// every response, errors included; a handler that sets its own value keeps it.
const SECURITY_HEADERS: [(&str, &str); 6] = [
    (
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; \
         frame-ancestors 'none'; base-uri 'self'; form-action 'self'",
    ),
    ("x-content-type-options", "nosniff"),
    ("x-frame-options", "DENY"),
    ("referrer-policy", "strict-origin-when-cross-origin"),
    ("permissions-policy", "camera=(), microphone=(), geolocation=(), payment=(), usb=()"),
    ("cross-origin-opener-policy", "same-origin"),
];

fn add_security_headers(headers: &mut HeaderMap) {
    for (name, value) in SECURITY_HEADERS {
        let name = HeaderName::from_static(name);
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    // Bodies are compressed by Accept-Encoding, so caches must key on it, compressed or not.
    crate::edge::head::append_vary(headers, "accept-encoding");
}
