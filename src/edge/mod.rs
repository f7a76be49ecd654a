//! The shared HTTP edge: what the JSON API (`http`) and the pages (`web`) both need, and
//! nothing either owns alone. The HTTP state wraps the service context with the HTTP-only
//! parts; problem bodies, rate limits, the caller's identity and address, the request-head
//! limit, CORS and the observing middleware live here, so `http` and `web` never import each
//! other.

pub mod cached;
pub mod caller;
pub mod head;
pub mod middleware;
pub mod multipart;
pub mod names;
pub mod problem;
pub mod rate_limit;

use std::ops::Deref;
use std::sync::Arc;

use crate::service::Context;

/// The state every HTTP handler and middleware reads: the service context plus the parts only
/// HTTP needs. It derefs to [`Context`], so a handler passes `&state` straight to a service.
pub struct HttpState {
    /// What services, jobs and commands share.
    pub ctx: Arc<Context>,
    /// Rate-limit state (per daemon).
    pub rate_limiter: Arc<rate_limit::RateLimiter>,
    /// The certificate in use, when HTTPS is on.
    pub tls: Option<crate::tls::TlsState>,
}

impl Deref for HttpState {
    type Target = Context;

    fn deref(&self) -> &Context {
        &self.ctx
    }
}
