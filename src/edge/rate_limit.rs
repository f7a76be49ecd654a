//! Rate limits on the API and on the pages' forms: per client address and per user, per class
//! of endpoint, with the GCRA algorithm (a leaky bucket that allows a burst of the whole allowance). State lives in a
//! bounded in-memory cache whose entries expire once idle, so a flood of distinct clients
//! cannot grow it without limit. Refusals are 429 `rate_limited` with `Retry-After` and the
//! `RateLimit-*` headers.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::web;

use crate::config::{Quota, RateLimitConfig};
use crate::edge::HttpState;
use crate::edge::caller::{access_claims, client_ip};
use crate::error::{AppError, ErrorCode};

impl Quota {
    fn emission_interval(self) -> Duration {
        self.period / self.requests.max(1)
    }
}

/// What one check decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed.
    pub allowed: bool,
    /// Requests still allowed right now.
    pub remaining: u32,
    /// Seconds until the allowance is whole again (allowed) or until a retry can succeed (refused).
    pub reset_seconds: u64,
}

/// The limiter of one app: a theoretical arrival time per key.
#[derive(Clone)]
pub struct RateLimiter {
    epoch: Instant,
    tats: moka::future::Cache<String, u64>,
}

impl RateLimiter {
    /// A limiter remembering at most `capacity` keys, each forgotten after `idle` without requests.
    pub fn new(capacity: u64, idle: Duration) -> Self {
        let tats = moka::future::Cache::builder().max_capacity(capacity).time_to_idle(idle).build();
        Self { epoch: Instant::now(), tats }
    }

    /// Counts one request for `key` against `quota` (GCRA).
    pub async fn check(&self, key: String, quota: Quota) -> Decision {
        let now = self.epoch.elapsed().as_nanos() as u64;
        let interval = quota.emission_interval().as_nanos() as u64;
        let tolerance = (quota.period.as_nanos() as u64).saturating_sub(interval);
        let mut decision = Decision { allowed: false, remaining: 0, reset_seconds: 0 };
        let outcome = &mut decision;
        self.tats
            .entry(key)
            .and_compute_with(|entry| {
                let tat = entry.map_or(now, |e| (*e.value()).max(now));
                let op = if tat - now > tolerance {
                    *outcome =
                        Decision { allowed: false, remaining: 0, reset_seconds: ceil_seconds(tat - now - tolerance) };
                    moka::ops::compute::Op::Nop
                } else {
                    let next = tat + interval;
                    let room = (now + tolerance + interval).saturating_sub(next) / interval.max(1);
                    *outcome =
                        Decision { allowed: true, remaining: room as u32, reset_seconds: ceil_seconds(next - now) };
                    moka::ops::compute::Op::Put(next)
                };
                std::future::ready(op)
            })
            .await;
        decision
    }

    /// Keys currently remembered.
    pub async fn key_count(&self) -> u64 {
        self.tats.run_pending_tasks().await;
        self.tats.entry_count()
    }
}

fn ceil_seconds(nanos: u64) -> u64 {
    nanos.div_ceil(1_000_000_000).max(1)
}

/// See the module documentation.
pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<HttpState>>().cloned();
    let Some(state) = state.filter(|s| s.config.rate_limits.enabled) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let config = &state.config.rate_limits;
    let ip = client_ip(&req, config).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let user = access_claims(req.request(), &state.auth).map(|claims| claims.sub);
    let path = req.path().to_owned();

    let mut checks: Vec<(&'static str, String, Quota)> = Vec::with_capacity(3);
    match &user {
        Some(user) => checks.push(("api", format!("api:u:{user}"), config.signed_in())),
        None => checks.push(("api_anonymous", format!("api:ip:{ip}"), config.anonymous())),
    }
    if path.starts_with("/api/v1/auth/") {
        checks.push(("auth", format!("auth:ip:{ip}"), config.auth()));
    }
    let creates_post =
        *req.method() == Method::POST && path.starts_with("/api/v1/communities/") && path.ends_with("/posts");
    if creates_post && let Some(user) = &user {
        checks.push(("posts", format!("posts:u:{user}"), config.posts()));
    }
    if *req.method() == Method::POST
        && path == "/api/v1/uploads"
        && let Some(user) = &user
    {
        checks.push(("uploads", format!("uploads:u:{user}"), config.uploads()));
    }
    if *req.method() == Method::POST
        && path == "/api/v1/messages"
        && let Some(user) = &user
    {
        checks.push(("messages", format!("messages:u:{user}"), config.messages()));
    }

    match decide(&state, &ip, checks).await {
        Err(refusal) => Ok(refusal.respond(req, |req, err| req.error_response(err))),
        Ok(reported) => {
            let mut response = next.call(req).await?.map_into_boxed_body();
            if let Some((quota, decision)) = reported {
                set_headers(&mut response, quota, decision);
            }
            Ok(response)
        }
    }
}

/// A refused request: the quota it ran out of and when to retry.
pub struct Refusal {
    quota: Quota,
    decision: Decision,
}

impl Refusal {
    /// The refusal as an error (for a handler that checks a limit itself), without the
    /// headers.
    pub fn into_error(self) -> AppError {
        let Self { quota, decision } = self;
        AppError::new(
            ErrorCode::RateLimited,
            format!(
                "too many uploads: {} per {} s; retry in {} s",
                quota.requests,
                quota.period.as_secs(),
                decision.reset_seconds
            ),
        )
    }

    pub(crate) fn respond(
        self,
        req: ServiceRequest,
        error_response: impl FnOnce(ServiceRequest, AppError) -> ServiceResponse<BoxBody>,
    ) -> ServiceResponse<BoxBody> {
        let Self { quota, decision } = self;
        let err = AppError::new(
            ErrorCode::RateLimited,
            format!(
                "too many requests: {} per {} s; retry in {} s",
                quota.requests,
                quota.period.as_secs(),
                decision.reset_seconds
            ),
        );
        let mut response = error_response(req, err);
        set_headers(&mut response, quota, decision);
        insert(&mut response, "retry-after", decision.reset_seconds.to_string());
        response
    }
}

/// Counts the request against every check; the first refusal wins. Otherwise the tightest
/// decision is the one reported in the headers.
pub async fn decide(
    state: &HttpState,
    ip: &str,
    checks: Vec<(&'static str, String, Quota)>,
) -> Result<Option<(Quota, Decision)>, Refusal> {
    let mut reported: Option<(Quota, Decision)> = None;
    for (class, key, quota) in checks {
        let decision = state.rate_limiter.check(key, quota).await;
        if !decision.allowed {
            state.metrics.rate_limited.with_label_values(&[class]).inc();
            tracing::info!(class, client = %ip, "rate limited");
            return Err(Refusal { quota, decision });
        }
        if reported.is_none_or(|(_, d)| decision.remaining < d.remaining) {
            reported = Some((quota, decision));
        }
    }
    Ok(reported)
}

fn set_headers(response: &mut ServiceResponse<BoxBody>, quota: Quota, decision: Decision) {
    insert(response, "ratelimit-limit", quota.requests.to_string());
    insert(response, "ratelimit-remaining", decision.remaining.to_string());
    insert(response, "ratelimit-reset", decision.reset_seconds.to_string());
}

fn insert(response: &mut ServiceResponse<BoxBody>, name: &'static str, value: String) {
    if let Ok(value) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(HeaderName::from_static(name), value);
    }
}

/// The limiter shared by the app, sized for the longest period configured.
pub fn limiter_for(config: &RateLimitConfig) -> Arc<RateLimiter> {
    let longest = [config.anonymous(), config.signed_in(), config.auth(), config.posts(), config.uploads()]
        .iter()
        .map(|q| q.period)
        .max()
        .unwrap_or(Duration::from_secs(60));
    Arc::new(RateLimiter::new(config.max_tracked_clients, longest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_burst_of_the_allowance_passes_then_the_next_waits_one_interval() {
        let limiter = RateLimiter::new(1000, Duration::from_secs(60));
        let quota = Quota { requests: 5, period: Duration::from_secs(60) };
        for expected_remaining in (0..5).rev() {
            let decision = limiter.check("k".into(), quota).await;
            assert!(decision.allowed);
            assert_eq!(decision.remaining, expected_remaining);
        }
        let refused = limiter.check("k".into(), quota).await;
        assert!(!refused.allowed);
        assert!((11..=12).contains(&refused.reset_seconds), "{refused:?}");
        assert!(limiter.check("other".into(), quota).await.allowed, "keys are independent");
    }

    #[tokio::test]
    async fn the_allowance_refills_with_time() {
        let limiter = RateLimiter::new(1000, Duration::from_secs(60));
        let quota = Quota { requests: 2, period: Duration::from_millis(200) };
        assert!(limiter.check("k".into(), quota).await.allowed);
        assert!(limiter.check("k".into(), quota).await.allowed);
        assert!(!limiter.check("k".into(), quota).await.allowed);
        tokio::time::sleep(Duration::from_millis(120)).await;
        assert!(limiter.check("k".into(), quota).await.allowed);
    }
}
