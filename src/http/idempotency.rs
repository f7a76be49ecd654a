//! `Idempotency-Key` on POST and PUT: the first response to a key is stored for 24 hours and
//! replayed to repeats of the same request by the same caller, so a retried request never
//! does its work twice. The same key with a different request is 422 `idempotency_key_reused`.

use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::db::idempotency::{self as db_idempotency, KEY_TTL_HOURS, StoredKey};
use crate::edge::HttpState;
use crate::edge::caller::access_claims;
use crate::error::{AppError, ErrorKind};

/// The request header.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on replayed responses.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
/// How long a repeat waits for the first request to finish before giving up.
const WAIT_FOR_FIRST: Duration = Duration::from_secs(30);
/// Response headers stored and replayed with the body.
const REPLAYED_HEADERS: [HeaderName; 2] = [header::CONTENT_TYPE, header::LOCATION];

/// See the module documentation.
pub async fn idempotency(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let applies = matches!(*req.method(), Method::POST | Method::PUT) && req.headers().contains_key(&IDEMPOTENCY_KEY);
    let state = req.app_data::<web::Data<HttpState>>().cloned();
    let (Some(state), true) = (state, applies) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let key = match req.headers().get(&IDEMPOTENCY_KEY).and_then(|v| v.to_str().ok()) {
        Some(key) if (1..=255).contains(&key.len()) => key.to_owned(),
        _ => {
            let err = AppError::invalid_field("Idempotency-Key", "must be 1 to 255 visible ASCII characters");
            return Ok(req.error_response(err));
        }
    };
    // The body is read here to be hashed, then handed back to the handler untouched.
    let limit = state.config.server.max_body_bytes;
    let mut body = web::BytesMut::new();
    let mut payload = req.take_payload();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            let err = AppError::new(ErrorKind::PayloadTooLarge, format!("the body is larger than {limit} bytes"));
            return Ok(req.error_response(err));
        }
        body.extend_from_slice(&chunk);
    }
    let body = body.freeze();
    let scope = caller_scope(&state, &req);
    let path = req.uri().path_and_query().map_or_else(|| req.path().to_owned(), ToString::to_string);
    let request_hash = Sha256::new()
        .chain_update(req.method().as_str())
        .chain_update([0])
        .chain_update(&path)
        .chain_update([0])
        .chain_update(&body)
        .finalize()
        .to_vec();
    req.set_payload(actix_web::dev::Payload::from(body));

    match claim_or_replay(&state, &scope, &key, req.method().as_str(), &path, &request_hash).await {
        Ok(Claim::Owned) => {}
        Ok(Claim::Replay(stored)) => {
            state.metrics.idempotent_replays.inc();
            return Ok(req.into_response(replay(&stored)));
        }
        Err(err) => return Ok(req.error_response(err)),
    }
    let response = next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    let response = match response {
        Ok(response) => response,
        Err(err) => {
            forget(&state, &scope, &key).await;
            return Err(err);
        }
    };
    let status = response.status();
    if status.is_server_error() {
        // A failure is not an answer: let the client retry with the same key.
        forget(&state, &scope, &key).await;
        return Ok(response);
    }
    let (request, response) = response.into_parts();
    let (head, body) = response.into_parts();
    let bytes = actix_web::body::to_bytes(body).await.unwrap_or_default();
    let headers: Vec<[String; 2]> = REPLAYED_HEADERS
        .iter()
        .filter_map(|name| {
            head.headers().get(name).and_then(|v| v.to_str().ok()).map(|v| [name.to_string(), v.to_owned()])
        })
        .collect();
    let stored = async {
        let mut conn = state.db.conn().await?;
        let headers = serde_json::to_value(&headers).unwrap_or_default();
        let status = status.as_u16() as i16;
        state
            .db
            .observe("idempotency.complete", &mut conn, async |conn| {
                db_idempotency::complete(conn, &scope, &key, status, &bytes, headers).await
            })
            .await
    };
    if let Err(err) = stored.await {
        tracing::warn!(error = %err, "could not store the idempotent response; the key is released");
        forget(&state, &scope, &key).await;
    }
    Ok(ServiceResponse::new(request, head.set_body(BoxBody::new(bytes))))
}

/// Whose key it is: a signed-in user's, or for anonymous calls the client's address.
fn caller_scope(state: &HttpState, req: &ServiceRequest) -> String {
    let user = access_claims(req.request(), &state.auth.keys).map(|claims| claims.sub);
    match user {
        Some(user_id) => format!("user:{user_id}"),
        None => format!("ip:{}", req.peer_addr().map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string())),
    }
}

enum Claim {
    Owned,
    Replay(StoredKey),
}

/// Claims the key, or waits for the first request with it to finish and returns its answer.
async fn claim_or_replay(
    state: &HttpState,
    scope: &str,
    key: &str,
    method: &str,
    path: &str,
    request_hash: &[u8],
) -> Result<Claim, AppError> {
    let deadline = Instant::now() + WAIT_FOR_FIRST;
    loop {
        // A fresh connection each round: waiters must not starve the pool the first request needs.
        let mut conn = state.db.conn().await?;
        let claimed = state
            .db
            .observe("idempotency.claim", &mut conn, async |conn| {
                db_idempotency::claim(conn, scope, key, method, path, request_hash).await
            })
            .await?;
        if claimed {
            return Ok(Claim::Owned);
        }
        let Some(stored) = state
            .db
            .observe("idempotency.find", &mut conn, async |conn| db_idempotency::find(conn, scope, key).await)
            .await?
        else {
            continue; // Released in between: try to claim it again.
        };
        if stored.created_at < chrono::Utc::now() - chrono::Duration::hours(KEY_TTL_HOURS) {
            state
                .db
                .observe("idempotency.release", &mut conn, async |conn| db_idempotency::release(conn, scope, key).await)
                .await?;
            continue;
        }
        if stored.request_hash != request_hash {
            return Err(AppError::new(
                ErrorKind::Unprocessable("idempotency_key_reused"),
                "this Idempotency-Key was used for a different request",
            ));
        }
        if stored.status.is_some() {
            return Ok(Claim::Replay(stored));
        }
        if Instant::now() >= deadline {
            return Err(AppError::new(
                ErrorKind::Conflict("idempotency_key_in_use"),
                "a request with this Idempotency-Key is still running",
            ));
        }
        drop(conn);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn replay(stored: &StoredKey) -> HttpResponse {
    let status = stored.status.and_then(|s| StatusCode::from_u16(s as u16).ok()).unwrap_or(StatusCode::OK);
    let mut response = HttpResponse::build(status);
    if let Ok(headers) = serde_json::from_value::<Vec<[String; 2]>>(stored.response_headers.clone()) {
        for [name, value] in headers {
            if let (Ok(name), Ok(value)) = (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                response.insert_header((name, value));
            }
        }
    }
    response.insert_header((REPLAYED, HeaderValue::from_static("true")));
    response.body(stored.response_body.clone().unwrap_or_default())
}

async fn forget(state: &HttpState, scope: &str, key: &str) {
    let released = async {
        let mut conn = state.db.conn().await?;
        state
            .db
            .observe("idempotency.release", &mut conn, async |conn| db_idempotency::release(conn, scope, key).await)
            .await
    };
    if let Err(err) = released.await {
        tracing::warn!(error = %err, "could not release an idempotency key");
    }
}

/// Deletes expired keys every hour.
pub async fn purge_periodically(state: std::sync::Arc<crate::service::Context>) {
    let period = Duration::from_secs(3600);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    loop {
        every.tick().await;
        let purged = async {
            let mut conn = state.db.conn().await?;
            state
                .db
                .observe("idempotency.purge_expired", &mut conn, async |conn| db_idempotency::purge_expired(conn).await)
                .await
        };
        match purged.await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "purged expired idempotency keys"),
            Err(err) => tracing::warn!(error = %err, "purging idempotency keys failed"),
        }
    }
}
