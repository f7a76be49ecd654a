//! Operations endpoints: liveness, readiness and the Prometheus scrape.

use actix_web::{HttpResponse, web};
use serde_json::json;

use crate::edge::HttpState;
use crate::edge::problem::Problem;
use crate::error::AppError;

/// `GET /health/live`: 200 while the process serves at all.
#[utoipa::path(
    get,
    path = "/health/live",
    tag = "operations",
    responses(
        (status = 200, description = "the process serves", body = serde_json::Value)
    )
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// `GET /health/ready`: 200 when every dependency answers (`degraded` when the primary is down
/// but replicas serve reads), else 503 naming the failing check.
#[utoipa::path(
    get,
    path = "/health/ready",
    tag = "operations",
    responses(
        (status = 200, description = "every check passes (`ready`), or the primary is down while replicas serve reads (`degraded`: writes answer 503)", body = serde_json::Value),
        (status = 503, description = "a check fails; it is named in checks", body = serde_json::Value)
    )
)]
pub async fn ready(state: web::Data<HttpState>) -> HttpResponse {
    let report = crate::service::health::readiness(&state).await;
    let replicas: serde_json::Map<String, serde_json::Value> =
        report.replicas.iter().map(|r| (r.name.clone(), r.state.clone().into())).collect();
    let status = if report.ready() {
        "ready"
    } else if report.degraded() {
        "degraded"
    } else {
        "unready"
    };
    let body = json!({
        "status": status,
        "checks": {
            "database": if report.database_up { "up" } else { "down" },
            "replicas": replicas,
            "disk": report.disk.as_str(),
            "queue": if report.queue_ok { "ok" } else { "error" },
            "migrations": if report.migrating { "pending" } else { "done" },
            "email": if state.mailer.is_some() { "on" } else { "off: no email.smtp_host configured" },
        },
    });
    if report.ready() || report.degraded() {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// `GET /metrics`: the Prometheus text exposition.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition"),
        (status = 404, description = "not_found: this daemon serves its metrics on the admin listener (`metrics.listen`)", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn metrics(state: web::Data<HttpState>) -> Result<HttpResponse, AppError> {
    state.db.export_pool_metrics();
    crate::service::health::export_storage_gauges(&state);
    crate::service::health::export_archiving(&state).await;
    crate::service::accounts::export_session_gauge(&state).await;
    crate::service::media::export_storage_gauges(&state).await;
    let text = state.metrics.render().map_err(AppError::internal)?;
    Ok(HttpResponse::Ok().content_type("text/plain; version=0.0.4; charset=utf-8").body(text))
}

/// `GET /metrics` on the public listener when metrics are served on the admin listener.
pub async fn metrics_elsewhere() -> Result<HttpResponse, AppError> {
    Err(AppError::not_found("metrics on this listener (they are served on the admin listener, metrics.listen)"))
}

/// The port HTTPS is served on, for redirects.
pub struct HttpsPort(pub u16);

/// Any request to the plain-HTTP redirect listener: 308 to the same path over HTTPS.
pub async fn redirect_to_https(req: actix_web::HttpRequest, port: web::Data<HttpsPort>) -> HttpResponse {
    let host = req.connection_info().host().to_owned();
    let name = match host.rsplit_once(':') {
        Some((name, port)) if port.chars().all(|c| c.is_ascii_digit()) => name.to_owned(),
        _ => host,
    };
    let authority = if port.0 == 443 { name } else { format!("{name}:{}", port.0) };
    let target = req.uri().path_and_query().map_or("/", |pq| pq.as_str());
    HttpResponse::PermanentRedirect().insert_header(("location", format!("https://{authority}{target}"))).finish()
}
