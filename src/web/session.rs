//! Browser sessions: the API's access and refresh tokens kept in cookies, refreshed
//! transparently, and the CSRF token every form carries.
//!
//! Cookies are `HttpOnly; Secure; SameSite=Lax`. A page request whose access token has expired
//! but whose refresh token is good gets a new pair in the same response. Unsafe requests must
//! come from our own origin (checked in [`crate::web::guard`]) and carry the CSRF token of
//! the browser's `agora_csrf` cookie (checked by [`CsrfForm`]).

use std::future::Future;
use std::pin::Pin;

use actix_web::http::header;
use actix_web::{FromRequest, HttpMessage, HttpRequest, dev::Payload, web};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;

use crate::edge::HttpState;
use crate::error::AppError;
use crate::security::REFRESH_TOKEN_TTL;
use crate::service::accounts::{self, Authenticated, SignedIn, TokenPair};
use crate::web::PageError;

/// The access token (a JWT, minutes long).
pub const ACCESS_COOKIE: &str = "agora_session";
/// The single-use refresh token.
pub const REFRESH_COOKIE: &str = "agora_refresh";
/// The browser's CSRF secret; forms echo it in their `csrf` field.
pub const CSRF_COOKIE: &str = "agora_csrf";

/// The value of cookie `name` of the request.
pub fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.trim_matches('"').to_owned())
        .filter(|value| !value.is_empty())
}

/// A `Set-Cookie` value with Agora's attributes.
pub fn set_cookie(name: &str, value: &str, max_age_seconds: u64) -> String {
    format!("{name}={value}; Path=/; Max-Age={max_age_seconds}; HttpOnly; Secure; SameSite=Lax")
}

/// `Set-Cookie` values that delete cookie `name`.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
}

/// The cookies that sign a browser in with `pair`.
pub fn session_cookies(access_token: &str, refresh_token: &str, expires_in: u64) -> [String; 2] {
    [
        set_cookie(ACCESS_COOKIE, access_token, expires_in),
        set_cookie(REFRESH_COOKIE, refresh_token, REFRESH_TOKEN_TTL.as_secs()),
    ]
}

/// The cookies of a fresh sign-in.
pub fn signed_in_cookies(signed_in: &SignedIn) -> [String; 2] {
    session_cookies(&signed_in.access_token, &signed_in.refresh_token, signed_in.expires_in)
}

/// Appends `Set-Cookie` headers to `headers`.
pub fn append_cookies(headers: &mut actix_web::http::header::HeaderMap, cookies: impl IntoIterator<Item = String>) {
    for cookie in cookies {
        if let Ok(value) = header::HeaderValue::from_str(&cookie) {
            headers.append(header::SET_COOKIE, value);
        }
    }
}

/// `Set-Cookie` values a response must carry, collected while the request is handled (a
/// transparent refresh, a new CSRF cookie) and added by [`crate::web::guard`].
#[derive(Debug, Clone, Default)]
pub struct PendingCookies(pub Vec<String>);

/// The request's CSRF token, put in the extensions by [`crate::web::guard`].
#[derive(Debug, Clone)]
pub struct CsrfToken(pub String);

/// A new random CSRF token.
pub fn new_csrf_token() -> Result<String, AppError> {
    let bytes = crate::security::random_bytes::<32>().map_err(AppError::internal)?;
    Ok(URL_SAFE_NO_PAD.encode(bytes))
}

/// Who is looking at a page: a signed-in user or nobody, and the CSRF token for its forms.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// The signed-in user, if any.
    pub auth: Option<Authenticated>,
    /// The token forms must echo.
    pub csrf: String,
}

impl Viewer {
    /// The signed-in user, or a 401 that the page layer turns into a redirect to sign-in.
    pub fn require(&self) -> Result<Authenticated, PageError> {
        self.auth.ok_or_else(|| PageError::from(AppError::unauthorized("sign in to do that")))
    }
}

impl FromRequest for Viewer {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            let state = req
                .app_data::<web::Data<HttpState>>()
                .cloned()
                .ok_or_else(|| PageError::from(AppError::internal(MissingState)))?;
            let csrf = req.extensions().get::<CsrfToken>().map(|t| t.0.clone()).unwrap_or_default();
            let auth = signed_in_user(&state, &req).await?;
            Ok(Viewer { auth, csrf })
        })
    }
}

/// Checks the access cookie; when it is missing or expired, spends the refresh cookie for a
/// new pair. A revoked or unusable session reads as signed out and its cookies are cleared.
async fn signed_in_user(state: &HttpState, req: &HttpRequest) -> Result<Option<Authenticated>, PageError> {
    if let Some(claims) = cookie(req, ACCESS_COOKIE).and_then(|token| state.auth.verify(&token)) {
        match accounts::authenticate(state, &claims).await {
            Ok(auth) => return Ok(Some(auth)),
            Err(err) if is_credentials_problem(&err) => {
                forget_session(req);
                return Ok(None);
            }
            Err(err) => return Err(err.into()),
        }
    }
    let Some(refresh_token) = cookie(req, REFRESH_COOKIE) else {
        return Ok(None);
    };
    match accounts::refresh(state, &refresh_token).await {
        Ok(pair) => {
            let auth = authenticate_pair(state, &pair).await?;
            if auth.is_some() {
                state.metrics.page_session_refreshes.with_label_values(&["success"]).inc();
                add_pending(req, session_cookies(&pair.access_token, &pair.refresh_token, pair.expires_in));
            }
            Ok(auth)
        }
        Err(err) if is_credentials_problem(&err) => {
            state.metrics.page_session_refreshes.with_label_values(&["failure"]).inc();
            tracing::info!(code = err.code.as_str(), "a browser's refresh token was refused; it is signed out");
            forget_session(req);
            Ok(None)
        }
        Err(err) => Err(err.into()),
    }
}

async fn authenticate_pair(state: &HttpState, pair: &TokenPair) -> Result<Option<Authenticated>, PageError> {
    let Some(claims) = state.auth.verify(&pair.access_token) else {
        return Ok(None);
    };
    Ok(Some(accounts::authenticate(state, &claims).await?))
}

fn is_credentials_problem(err: &AppError) -> bool {
    err.code.status() == 401
}

fn forget_session(req: &HttpRequest) {
    add_pending(req, [clear_cookie(ACCESS_COOKIE), clear_cookie(REFRESH_COOKIE)]);
}

/// Queues `Set-Cookie` values for the response of `req`.
pub fn add_pending(req: &HttpRequest, cookies: impl IntoIterator<Item = String>) {
    let mut extensions = req.extensions_mut();
    let pending = extensions.get_mut::<PendingCookies>();
    match pending {
        Some(pending) => pending.0.extend(cookies),
        None => {
            extensions.insert(PendingCookies(cookies.into_iter().collect()));
        }
    }
}

/// A urlencoded form whose `csrf` field matches the browser's CSRF cookie. Anything else is a
/// 403 that changes nothing.
#[derive(Debug)]
pub struct CsrfForm<T>(pub T);

#[derive(serde::Deserialize)]
struct CsrfField {
    #[serde(default)]
    csrf: String,
}

impl<T: DeserializeOwned + 'static> FromRequest for CsrfForm<T> {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, PageError>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let expected = req.extensions().get::<CsrfToken>().map(|t| t.0.clone());
        let form_type = req.content_type().eq_ignore_ascii_case("application/x-www-form-urlencoded");
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !form_type {
                return Err(AppError::new(
                    crate::error::ErrorCode::UnsupportedMediaType,
                    "forms must be sent as application/x-www-form-urlencoded",
                )
                .into());
            }
            let body = body.await.map_err(|err| {
                if err.as_response_error().status_code() == actix_web::http::StatusCode::PAYLOAD_TOO_LARGE {
                    AppError::new(crate::error::ErrorCode::PayloadTooLarge, "the form is larger than allowed")
                } else {
                    AppError::bad_request("the form could not be read")
                }
            })?;
            let sent: CsrfField =
                serde_urlencoded::from_bytes(&body).map_err(|_| AppError::bad_request("the form is malformed"))?;
            let valid = expected.is_some_and(|expected| {
                !expected.is_empty() && constant_time_eq(expected.as_bytes(), sent.csrf.as_bytes())
            });
            if !valid {
                return Err(AppError::new(
                    crate::error::ErrorCode::CsrfFailed,
                    "this form has expired or did not come from this site; reload the page and try again",
                )
                .into());
            }
            let form = serde_urlencoded::from_bytes(&body)
                .map_err(|err| AppError::bad_request(format!("the form is malformed: {err}")))?;
            Ok(CsrfForm(form))
        })
    }
}

/// Checks the `csrf` field of a form read by hand (a multipart form) against the browser's
/// CSRF cookie, as [`CsrfForm`] does for urlencoded ones.
pub fn check_csrf(req: &HttpRequest, sent: &str) -> Result<(), PageError> {
    let expected = req.extensions().get::<CsrfToken>().map(|t| t.0.clone());
    let valid =
        expected.is_some_and(|expected| !expected.is_empty() && constant_time_eq(expected.as_bytes(), sent.as_bytes()));
    if valid {
        return Ok(());
    }
    Err(AppError::new(
        crate::error::ErrorCode::CsrfFailed,
        "this form has expired or did not come from this site; reload the page and try again",
    )
    .into())
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The app state was not registered: a wiring bug, never a client error.
#[derive(Debug, thiserror::Error)]
#[error("application state is missing from the request")]
struct MissingState;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_one_cookie_among_many() {
        let req = actix_web::test::TestRequest::default()
            .insert_header((header::COOKIE, "a=1; agora_csrf=xyz; b=2"))
            .to_http_request();
        assert_eq!(cookie(&req, CSRF_COOKIE).as_deref(), Some("xyz"));
        assert_eq!(cookie(&req, "missing"), None);
    }

    #[test]
    fn compares_tokens_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }
}
