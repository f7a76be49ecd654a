//! Who is calling and from where: the bearer token's claims (verified once per request), the
//! `User-Agent`, and whose summary quota a request spends.

use std::net::IpAddr;

use actix_web::dev::ServiceRequest;
use actix_web::{HttpMessage, HttpRequest, http::header};

use crate::config::RateLimitConfig;
use crate::security::AccessClaims;
use crate::service::accounts::{AuthState, Authenticated};

/// The result of checking a request's bearer token, kept in the request's extensions so the
/// rate limiter, the idempotency layer and the extractor verify the signature once.
#[derive(Clone)]
struct VerifiedToken(Option<AccessClaims>);

/// The claims of the request's bearer token when its signature and expiry check out.
pub fn access_claims(req: &HttpRequest, auth: &AuthState) -> Option<AccessClaims> {
    if let Some(VerifiedToken(claims)) = req.extensions().get::<VerifiedToken>() {
        return claims.clone();
    }
    let claims = bearer_token(req).and_then(|token| auth.verify(&token));
    req.extensions_mut().insert(VerifiedToken(claims.clone()));
    claims
}

/// The token of an `Authorization: Bearer …` header.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty()).then(|| token.trim().to_owned())
}

/// The `User-Agent` of a request, for naming login sessions.
pub fn user_agent(req: &HttpRequest) -> String {
    req.headers().get(header::USER_AGENT).and_then(|v| v.to_str().ok()).unwrap_or("").to_owned()
}

/// Whose daily summary quota a request spends: the signed-in user's, else its address's.
pub fn summary_requester(
    request: &HttpRequest,
    config: &RateLimitConfig,
    reader: Option<Authenticated>,
) -> crate::summaries::Requester {
    match reader {
        Some(user) => crate::summaries::Requester(format!("user:{}", user.user_id.0)),
        None => {
            let ip = client_ip_of(request, config);
            crate::summaries::Requester(format!("ip:{}", ip.map_or_else(|| "unknown".to_owned(), |ip| ip.to_string())))
        }
    }
}

/// The client's address: the peer, or the left-most untrusted hop of `X-Forwarded-For` when the
/// peer is a trusted proxy.
pub(crate) fn client_ip(req: &ServiceRequest, config: &RateLimitConfig) -> Option<IpAddr> {
    client_address(req.peer_addr(), req.headers(), config)
}

/// [`client_ip`] for a handler's request.
pub fn client_ip_of(req: &actix_web::HttpRequest, config: &RateLimitConfig) -> Option<IpAddr> {
    client_address(req.peer_addr(), req.headers(), config)
}

fn client_address(
    peer: Option<std::net::SocketAddr>,
    headers: &actix_web::http::header::HeaderMap,
    config: &RateLimitConfig,
) -> Option<IpAddr> {
    let peer = peer?.ip();
    if !config.trusts(peer) {
        return Some(peer);
    }
    let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
    let hops: Vec<IpAddr> =
        forwarded.map(|v| v.split(',').filter_map(|hop| hop.trim().parse().ok()).collect()).unwrap_or_default();
    // Walk from the nearest hop back; the first address we do not trust is the client.
    Some(hops.iter().rev().find(|hop| !config.trusts(**hop)).copied().unwrap_or(peer))
}
