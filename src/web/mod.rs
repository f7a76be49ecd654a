//! Pages for browser users: server-rendered HTML (askama templates compiled in), one
//! stylesheet and a small script for progressive enhancement. Every action is a form that posts
//! and redirects, so the site works with JavaScript off.
//!
//! Handlers stay thin: they read the viewer and the form, call `service`, and render a
//! template or redirect. The rules live in `service`, exactly as for the JSON API.

pub mod account;
pub mod assets;
pub mod browse;
pub mod feeds;
pub mod inbox;
pub mod manage;
pub mod reader;
pub mod session;
pub mod shared_page;
pub mod thread;
pub mod view;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header;
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, ResponseError, web};
use askama::Template;

use crate::edge::{HttpState, rate_limit};
use crate::error::{AppError, ErrorCode};
use session::{CSRF_COOKIE, CsrfToken, PendingCookies, Viewer};
use view::Layout;

/// The page routes. Registered after the API, so `/api/…` never reaches them.
pub fn configure(cfg: &mut web::ServiceConfig) {
    use web::{get, post, resource};
    let pages = web::scope("")
        .wrap(from_fn(guard))
        // Wrapped last, so it runs first: a refused form costs no body read and no query.
        .wrap(from_fn(rate_limit_forms))
        .app_data(web::QueryConfig::default().error_handler(|err, _req| PageError::bad_query(&err).into()))
        .app_data(
            web::PathConfig::default().error_handler(|_err, _req| PageError::from(AppError::not_found("page")).into()),
        )
        .service(resource("/").route(get().to(browse::front)))
        .service(resource("/all").route(get().to(browse::front_all)))
        .service(resource("/feed.xml").route(get().to(feeds::front)))
        .service(resource("/c/{name}/feed.xml").route(get().to(feeds::community)))
        .service(resource("/u/{username}/feed.xml").route(get().to(feeds::user)))
        .service(resource("/search").route(get().to(browse::search)))
        .service(resource("/communities").route(get().to(browse::communities)))
        .service(
            resource("/communities/new")
                .route(get().to(manage::new_community))
                .route(post().to(manage::create_community)),
        )
        .service(
            resource("/submit")
                .route(get().to(manage::submit_form))
                .route(post().guard(actix_web::guard::fn_guard(is_multipart)).to(manage::submit_with_image))
                .route(post().to(manage::submit)),
        )
        .service(resource("/c/{name}").route(get().to(browse::community)))
        .service(resource("/c/{name}/about").route(get().to(browse::about)))
        .service(resource("/c/{name}/membership").route(post().to(manage::membership)))
        .service(resource("/c/{name}/mod").route(get().to(manage::mod_queue)))
        .service(resource("/c/{name}/ban").route(post().to(manage::ban)))
        .service(resource("/c/{name}/modlog").route(get().to(manage::modlog)))
        .service(
            resource("/c/{name}/settings")
                .route(get().to(manage::community_settings))
                .route(post().to(manage::save_community_settings)),
        )
        .service(resource("/c/{name}/moderators").route(post().to(manage::moderators)))
        .service(resource("/reports/{id}/resolve").route(post().to(manage::resolve_report)))
        .service(resource("/p/{id}").route(get().to(thread::post_page)))
        .service(resource("/p/{id}/comments/{comment}").route(get().to(thread::continue_thread)))
        .service(resource("/p/{id}/reply").route(post().to(thread::reply)))
        .service(resource("/p/{id}/vote").route(post().to(thread::vote_post)))
        .service(resource("/p/{id}/save").route(post().to(reader::save_post)))
        .service(resource("/p/{id}/hide").route(post().to(reader::hide_post)))
        .service(resource("/comments/{id}/save").route(post().to(reader::save_comment)))
        .service(resource("/u/{username}/block").route(post().to(reader::block_user)))
        .service(resource("/c/{name}/block").route(post().to(reader::block_community)))
        .service(resource("/saved").route(get().to(reader::saved)))
        .service(resource("/messages").route(get().to(reader::messages_page)).route(post().to(reader::send_new)))
        .service(resource("/reports/messages").route(get().to(reader::message_reports)))
        .service(resource("/messages/{username}").route(get().to(reader::conversation)).route(post().to(reader::reply)))
        .service(resource("/messages/{username}/{id}/report").route(post().to(reader::report)))
        .service(resource("/settings/filters").route(post().to(reader::save_filters)))
        .service(resource("/p/{id}/edit").route(get().to(thread::edit_post_form)).route(post().to(thread::edit_post)))
        .service(resource("/p/{id}/delete").route(post().to(thread::delete_post)))
        .service(resource("/p/{id}/summary").route(get().to(thread::summary_page)))
        .service(resource("/p/{id}/mod").route(post().to(manage::moderate_post)))
        .service(resource("/p/{id}/report").route(post().to(manage::report_post)))
        .service(resource("/comments/{id}/report").route(post().to(manage::report_comment)))
        .service(resource("/comments/{id}/vote").route(post().to(thread::vote_comment)))
        .service(
            resource("/comments/{id}/edit")
                .route(get().to(thread::edit_comment_form))
                .route(post().to(thread::edit_comment)),
        )
        .service(resource("/comments/{id}/delete").route(post().to(thread::delete_comment)))
        .service(resource("/comments/{id}/mod").route(post().to(manage::moderate_comment)))
        .service(resource("/u/{username}").route(get().to(browse::user)))
        .service(resource("/signup").route(get().to(account::signup_form)).route(post().to(account::signup)))
        .service(resource("/login").route(get().to(account::login_form)).route(post().to(account::login)))
        .service(resource("/logout").route(post().to(account::logout)))
        .service(resource("/reset").route(get().to(account::reset_form)).route(post().to(account::reset)))
        .service(
            resource("/reset-password")
                .route(get().to(account::reset_confirm_form))
                .route(post().to(account::reset_confirm)),
        )
        .service(resource("/settings").route(get().to(account::settings)).route(post().to(account::save_settings)))
        .service(resource("/settings/password").route(post().to(account::change_password)))
        .service(resource("/settings/profile").route(post().to(account::save_profile)))
        .service(resource("/settings/images").route(post().to(account::save_images)))
        .service(resource("/inbox").route(get().to(inbox::page)))
        .service(resource("/inbox/read-all").route(post().to(inbox::read_all)))
        .service(resource("/inbox/{id}/read").route(post().to(inbox::read)))
        .service(
            resource("/unsubscribe").route(get().to(account::unsubscribe_form)).route(post().to(account::unsubscribe)),
        )
        .default_service(web::to(not_found));
    // Assets first and outside the guard: an immutable, publicly cacheable file must never
    // carry a Set-Cookie.
    cfg.service(resource("/static/{file}").route(get().to(assets::serve))).service(pages);
}

/// Every page request passes here: it counts the page's database work, gives the browser a
/// CSRF cookie, refuses unsafe requests from other origins, adds the cookies handlers queued,
/// and sends signed-out browsers that need an account to the sign-in page.
async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let Some(state) = req.app_data::<web::Data<HttpState>>().cloned() else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let existing = session::cookie(req.request(), CSRF_COOKIE);
    let csrf = match existing.clone() {
        Some(token) => token,
        None => match session::new_csrf_token() {
            Ok(token) => token,
            Err(err) => return Ok(req.error_response(PageError::from(err))),
        },
    };
    if existing.is_none() {
        session::add_pending(req.request(), [session::set_cookie(CSRF_COOKIE, &csrf, 365 * 86_400)]);
    }
    req.extensions_mut().insert(CsrfToken(csrf));

    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    if unsafe_method && !same_origin(req.request(), &state.config.server.public_url) {
        state.metrics.page_csrf_refusals.with_label_values(&["origin"]).inc();
        let origin = req.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok()).unwrap_or("none").to_owned();
        tracing::info!(origin, path = req.path(), "refused a page form from another origin");
        let error = AppError::new(ErrorCode::CrossOrigin, "this form was sent from another site; nothing was changed");
        return Ok(req.error_response(PageError::from(error)));
    }

    let wants_json = accepts_json(req.request());
    let ((response, page), queries) = crate::service::count_db_work(async {
        let response = next.call(req).await;
        let page = response.as_ref().ok().and_then(|r| r.request().match_pattern());
        (response, page)
    })
    .await;
    let mut response = response?.map_into_boxed_body();
    if let Some(page) = page {
        state.metrics.page_db_queries.with_label_values(&[&page]).observe(f64::from(queries));
    }
    if response.status() == StatusCode::FORBIDDEN && is_csrf_refusal(&response) {
        state.metrics.page_csrf_refusals.with_label_values(&["token"]).inc();
        tracing::info!(path = response.request().path(), "refused a page form without a valid CSRF token");
    }
    let needs_sign_in =
        response.response().extensions().get::<RefusalCode>().is_some_and(|code| code.0 == ErrorCode::Unauthorized);
    if needs_sign_in && !wants_json {
        let request = response.request();
        let back = if request.method() == Method::GET { request.uri().to_string() } else { referer_path(request) };
        let target = format!("/login?{}", serde_urlencoded::to_string([("next", back)]).unwrap_or_default());
        let redirect = see_other(&target);
        response = ServiceResponse::new(response.request().clone(), redirect);
    }
    let pending = response.request().extensions().get::<PendingCookies>().cloned();
    session::append_cookies(response.headers_mut(), pending.map(|p| p.0).unwrap_or_default());
    Ok(response)
}

fn is_csrf_refusal(response: &ServiceResponse<BoxBody>) -> bool {
    response.response().extensions().get::<RefusalCode>().is_some_and(|code| code.0 == ErrorCode::CsrfFailed)
}

/// Whether an unsafe request comes from a page of this site: its `Origin` (or, without one,
/// its `Referer`) must be the origin the browser addressed (`Host`) or `server.public_url`'s.
fn same_origin(req: &HttpRequest, public_url: &str) -> bool {
    let claimed = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
        .or_else(|| req.headers().get(header::REFERER).and_then(|v| v.to_str().ok()).map(origin_of));
    let Some(claimed) = claimed else { return false };
    let info = req.connection_info();
    let addressed = format!("{}://{}", info.scheme(), info.host());
    claimed.eq_ignore_ascii_case(&addressed) || claimed.eq_ignore_ascii_case(&origin_of(public_url))
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return String::new() };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!("{scheme}://{authority}")
}

/// The path of the page a form was sent from (its `Referer`), or `/`.
pub fn referer_path(req: &HttpRequest) -> String {
    let referer = req.headers().get(header::REFERER).and_then(|v| v.to_str().ok()).unwrap_or("/");
    local_path(referer.split_once("://").map_or(referer, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..])))
}

/// `next` targets stay on this site: a path, never `//host` or a full URL.
pub fn local_path(next: &str) -> String {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next.to_owned()
    } else {
        "/".into()
    }
}

fn accepts_json(req: &HttpRequest) -> bool {
    req.headers().get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"))
}

/// How a form shows a refused action: the status to answer and the messages to list above
/// the form. Failures that are not about the input (the database is down, a bug) stay errors.
pub fn form_problem(error: AppError) -> Result<(StatusCode, Vec<String>), PageError> {
    let status = crate::edge::problem::status_of(error.code);
    if status.is_server_error() {
        return Err(error.into());
    }
    let messages = if error.errors.is_empty() {
        vec![sentence(&error.detail)]
    } else {
        error.errors.iter().map(|e| format!("{}: {}", field_label(&e.field), e.message)).collect()
    };
    Ok((status, messages))
}

fn field_label(field: &str) -> String {
    let spaced = field.replace('_', " ");
    let mut chars = spaced.chars();
    chars.next().map_or_else(String::new, |first| first.to_uppercase().chain(chars).collect())
}

fn sentence(detail: &str) -> String {
    let mut text = field_label(detail);
    if !text.ends_with('.') {
        text.push('.');
    }
    text
}

/// A 303 to `location`: how every form post ends.
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther().insert_header((header::LOCATION, location)).finish()
}

/// Renders `template` as the page's HTML with an ETag; a matching `If-None-Match` gets 304.
pub fn render(req: &HttpRequest, template: &impl Template) -> Result<HttpResponse, PageError> {
    render_with_status(req, template, StatusCode::OK)
}

/// [`render`] with another status (a form shown again with its errors is a 422).
pub fn render_with_status(
    req: &HttpRequest,
    template: &impl Template,
    status: StatusCode,
) -> Result<HttpResponse, PageError> {
    let mut html = String::with_capacity(page_size_hint());
    template.render_into(&mut html).map_err(AppError::internal)?;
    remember_page_size(html.len());
    let etag = crate::service::cache::etag_of(html.as_bytes());
    Ok(html_response(req, status, etag, bytes::Bytes::from(html)))
}

/// About the size of recent pages: rendering into a buffer of that size spares a big page
/// (a long thread is hundreds of KB) the copies of growing from askama's small hint.
static PAGE_SIZE_HINT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(16 * 1024);

fn page_size_hint() -> usize {
    PAGE_SIZE_HINT.load(std::sync::atomic::Ordering::Relaxed)
}

/// Moves the hint toward `len` (up at once, down slowly), capped at 1 MiB.
fn remember_page_size(len: usize) {
    let hint = page_size_hint();
    let next = if len > hint { len + len / 8 } else { hint - (hint - len) / 16 };
    PAGE_SIZE_HINT.store(next.clamp(4 * 1024, 1024 * 1024), std::sync::atomic::Ordering::Relaxed);
}

/// A page's answer: HTML with its ETag (a matching `If-None-Match` gets 304), revalidated by
/// browsers and kept by no shared cache.
pub fn html_response(req: &HttpRequest, status: StatusCode, etag: String, html: bytes::Bytes) -> HttpResponse {
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let mut response =
        if matches && status == StatusCode::OK { HttpResponse::NotModified() } else { HttpResponse::build(status) };
    response
        .insert_header((header::ETAG, etag))
        // Pages differ per viewer: browsers revalidate with the ETag, shared caches keep nothing.
        .insert_header((header::CACHE_CONTROL, "private, no-cache"))
        .insert_header((header::VARY, "Cookie"));
    if matches && status == StatusCode::OK {
        return response.finish();
    }
    response.content_type("text/html; charset=utf-8").body(html)
}

/// The page frame for `viewer`: their username comes from a cache, so most pages spend no
/// query on it.
pub async fn layout(state: &HttpState, viewer: &Viewer) -> Result<Layout, PageError> {
    let Some(auth) = viewer.auth else { return Ok(Layout::new(None, viewer.csrf.clone())) };
    let username = username_of(state, auth.user_id.0).await?;
    let prefs = crate::service::viewer::viewer_prefs(state, auth.user_id).await?;
    let mut layout = Layout::new(Some(username), viewer.csrf.clone());
    layout.avatar_url = prefs.avatar_url.clone();
    layout.show_nsfw = prefs.show_nsfw;
    layout.blocked_users = prefs.blocked_users.clone();
    layout.blocked_communities = prefs.blocked_communities.clone();
    layout.unread = crate::service::inbox::unread(state, auth.user_id).await?;
    Ok(layout)
}

/// The username of a user id, through the cache.
pub async fn username_of(state: &HttpState, user_id: i64) -> Result<String, PageError> {
    Ok(crate::service::users::username_of(state, crate::domain::UserId(user_id)).await?)
}

/// A page that failed: rendered as a friendly HTML page with the right status.
#[derive(Debug)]
pub struct PageError(pub AppError);

impl From<AppError> for PageError {
    fn from(error: AppError) -> Self {
        Self(error)
    }
}

impl PageError {
    fn bad_query(err: &actix_web::error::QueryPayloadError) -> Self {
        Self(AppError::bad_request(format!("this address has a bad parameter: {err}")))
    }
}

impl std::fmt::Display for PageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

/// The `code` of a refusal, kept on the response for the guard's metrics.
#[derive(Debug, Clone, Copy)]
struct RefusalCode(ErrorCode);

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    layout: Layout,
    status: u16,
    title: &'static str,
    detail: String,
    errors: Vec<crate::error::FieldError>,
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        crate::edge::problem::status_of(self.0.code)
    }

    fn error_response(&self) -> HttpResponse {
        crate::edge::problem::log_error(&self.0);
        let status = self.status_code();
        let (title, detail) = match self.0.code {
            ErrorCode::NotFound => {
                ("Not found", "There is nothing here. It may have been deleted, or the link is wrong.".into())
            }
            code if code.status() == 403 => ("Not allowed", self.0.detail.clone()),
            code if code.status() == 401 => ("Sign in needed", self.0.detail.clone()),
            ErrorCode::RateLimited => {
                ("Slow down", "Too many requests in a short time. Wait a moment and try again.".into())
            }
            ErrorCode::ServiceUnavailable => {
                ("Temporarily unavailable", "Agora cannot reach its database right now. Try again shortly.".into())
            }
            ErrorCode::InsufficientStorage => (
                "Cannot save right now",
                "The server's disk is full, so nothing was saved. Reading works; try again later.".into(),
            ),
            ErrorCode::InternalError => (
                "Something went wrong",
                "This is a bug on our side; it has been logged. Try again, or go back to the front page.".into(),
            ),
            _ => ("That did not work", self.0.detail.clone()),
        };
        let page = ErrorPage {
            layout: Layout::new(None, String::new()),
            status: status.as_u16(),
            title,
            detail,
            errors: self.0.errors.clone(),
        };
        let html = page.render().unwrap_or_else(|_| format!("<!doctype html><title>{title}</title><h1>{title}</h1>"));
        let mut builder = HttpResponse::build(status);
        builder.content_type("text/html; charset=utf-8").insert_header((header::CACHE_CONTROL, "no-store"));
        if let Some(seconds) = crate::edge::problem::retry_after(self.0.code) {
            builder.insert_header((header::RETRY_AFTER, seconds));
        }
        let mut response = builder.body(html);
        response.extensions_mut().insert(RefusalCode(self.0.code));
        response
    }
}

/// Any page route that does not exist.
async fn not_found(req: HttpRequest) -> HttpResponse {
    if req.path().starts_with("/api/") {
        return AppError::not_found("route").error_response();
    }
    PageError::from(AppError::not_found("page")).error_response()
}

/// Whether a request's body is `multipart/form-data` (a form with a file input).
fn is_multipart(ctx: &actix_web::guard::GuardContext<'_>) -> bool {
    ctx.head()
        .headers()
        .get(actix_web::http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("multipart/form-data"))
}

/// How long a page's form waits for its image to be processed before it answers (the pages
/// work without JavaScript, so they cannot poll).
const IMAGE_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Accepts the image of a page's form (counted against the user's `uploads` allowance) and
/// waits for it to be processed; its upload id, or why it cannot be used (on `field`).
pub async fn upload_from_form(
    req: &HttpRequest,
    state: &HttpState,
    user: crate::service::accounts::Authenticated,
    file: crate::service::media::Receiving,
    field: &str,
) -> Result<i64, AppError> {
    charge_upload(req, state, user).await?;
    let accepted = crate::service::media::accept(state, user.user_id, file).await?;
    let upload = crate::service::media::wait_processed(state, accepted.id, IMAGE_WAIT).await?;
    match upload.status.as_str() {
        "ready" => Ok(upload.id),
        "failed" => Err(AppError::invalid_field(
            field,
            upload.failure_reason.unwrap_or_else(|| "could not be processed".into()),
        )),
        _ => Err(AppError::invalid_field(field, "is taking long to process; please send it again in a minute")),
    }
}

/// Counts an image sent through a page's form against the user's `uploads` allowance (known
/// only once the form is read, so not in [`rate_limit_forms`]).
async fn charge_upload(
    req: &HttpRequest,
    state: &HttpState,
    user: crate::service::accounts::Authenticated,
) -> Result<(), AppError> {
    let config = &state.config.rate_limits;
    if !config.enabled {
        return Ok(());
    }
    let ip = crate::edge::caller::client_ip_of(req, config).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let checks = vec![("uploads", format!("uploads:u:{}", user.user_id.0), config.uploads())];
    match rate_limit::decide(state, &ip, checks).await {
        Ok(_) => Ok(()),
        Err(refusal) => Err(refusal.into_error()),
    }
}

/// Rate limits on the pages' forms (every unsafe page request): the same budgets as the API,
/// so signing in through a form or through `/api/v1/auth/login` spends one allowance. Page
/// views (GET) are not limited: they are read-only and served largely from caches.
pub async fn rate_limit_forms(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let state = req.app_data::<web::Data<HttpState>>().cloned();
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let Some(state) = state.filter(|s| s.config.rate_limits.enabled && unsafe_method) else {
        return next.call(req).await.map(ServiceResponse::map_into_boxed_body);
    };
    let config = &state.config.rate_limits;
    let ip = crate::edge::caller::client_ip(&req, config).map_or_else(|| "unknown".to_owned(), |ip| ip.to_string());
    let user = session::cookie(req.request(), session::ACCESS_COOKIE)
        .and_then(|token| state.auth.verify(&token))
        .map(|claims| claims.sub);
    let path = req.path().to_owned();
    let mut checks: Vec<(&'static str, String, crate::config::Quota)> = Vec::with_capacity(3);
    match &user {
        Some(user) => checks.push(("api", format!("api:u:{user}"), config.signed_in())),
        None => checks.push(("api_anonymous", format!("api:ip:{ip}"), config.anonymous())),
    }
    if ["/login", "/signup", "/reset", "/reset-password", "/settings/password"].contains(&path.as_str()) {
        checks.push(("auth", format!("auth:ip:{ip}"), config.auth()));
    }
    if path == "/submit"
        && let Some(user) = &user
    {
        checks.push(("posts", format!("posts:u:{user}"), config.posts()));
    }
    // Sending is `POST /messages` or `POST /messages/{username}`, not a report.
    let sends_message = path == "/messages" || (path.starts_with("/messages/") && path.matches('/').count() == 2);
    if sends_message && let Some(user) = &user {
        checks.push(("messages", format!("messages:u:{user}"), config.messages()));
    }
    match rate_limit::decide(&state, &ip, checks).await {
        Err(refusal) => Ok(refusal.respond(req, |req, err| req.error_response(PageError::from(err)))),
        Ok(_) => next.call(req).await.map(ServiceResponse::map_into_boxed_body),
    }
}
