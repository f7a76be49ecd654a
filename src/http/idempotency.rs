//! `Idempotency-Key` on POST and PUT: the first response to a key is stored for 24 hours and
//! replayed to repeats of the same request by the same caller, so a retried request never
//! does its work twice. The same key with a different request is 422 `idempotency_key_reused`.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpResponse, web};
use futures_util::StreamExt;
use sha2::{Digest, Sha256};

use crate::edge::HttpState;
use crate::edge::caller::access_claims;
use crate::edge::problem::Problem;
use crate::error::{AppError, ErrorCode};
use crate::service::idempotency::{self, Claim, StoredKey};

/// The request header.
pub const IDEMPOTENCY_KEY: HeaderName = HeaderName::from_static("idempotency-key");
/// Set on replayed responses.
pub const REPLAYED: HeaderName = HeaderName::from_static("idempotent-replayed");
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
    // An upload (streamed to disk without a key) is held here whole to be hashed, up to its
    // own limit.
    let limit = if req.path() == "/api/v1/uploads" {
        usize::try_from(state.config.media.max_upload_bytes).unwrap_or(usize::MAX)
    } else {
        state.config.server.max_body_bytes
    };
    let mut body = web::BytesMut::new();
    let mut payload = req.take_payload();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk?;
        if body.len() + chunk.len() > limit {
            let err = AppError::new(ErrorCode::PayloadTooLarge, format!("the body is larger than {limit} bytes"));
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

    match idempotency::claim_or_replay(&state, &scope, &key, req.method().as_str(), &path, &request_hash).await {
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
            idempotency::forget(&state, &scope, &key).await;
            return Err(err);
        }
    };
    let status = response.status();
    if status.is_server_error() {
        // A failure is not an answer: let the client retry with the same key.
        idempotency::forget(&state, &scope, &key).await;
        return Ok(response);
    }
    let (request, response) = response.into_parts();
    let (head, body) = response.into_parts();
    // An error's problem body is written by the outer middleware; store it as it will be sent.
    let problem = head.extensions().get::<Problem>().map(Problem::to_body);
    let bytes = match problem {
        Some(problem) => actix_web::web::Bytes::from(problem),
        None => actix_web::body::to_bytes(body).await.unwrap_or_default(),
    };
    let headers: Vec<[String; 2]> = REPLAYED_HEADERS
        .iter()
        .filter_map(|name| {
            head.headers().get(name).and_then(|v| v.to_str().ok()).map(|v| [name.to_string(), v.to_owned()])
        })
        .collect();
    let headers = serde_json::to_value(&headers).unwrap_or_default();
    if let Err(err) = idempotency::complete(&state, &scope, &key, status.as_u16() as i16, &bytes, headers).await {
        tracing::warn!(error = %err, "could not store the idempotent response; the key is released");
        idempotency::forget(&state, &scope, &key).await;
    }
    Ok(ServiceResponse::new(request, head.set_body(BoxBody::new(bytes))))
}

/// Whose key it is: a signed-in user's, or for anonymous calls the client's address.
fn caller_scope(state: &HttpState, req: &ServiceRequest) -> String {
    let user = access_claims(req.request(), &state.auth).map(|claims| claims.sub);
    match user {
        Some(user_id) => format!("user:{user_id}"),
        None => format!("ip:{}", req.peer_addr().map_or_else(|| "unknown".to_owned(), |a| a.ip().to_string())),
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
    let body = stored.response_body.clone().unwrap_or_default();
    // A replayed refusal is the same problem with this request's id: the observing middleware
    // writes it, as it writes every problem.
    if status.is_client_error()
        && let Ok(problem) = serde_json::from_slice::<Problem>(&body)
    {
        let mut response = response.finish();
        response.extensions_mut().insert(problem);
        return response;
    }
    response.body(body)
}
