//! Account pages: sign up, sign in, sign out, password reset, and settings (email
//! preferences and password change).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use serde::Deserialize;

use crate::domain::{EmailAddress, NotificationSettings, Password, Username};
use crate::edge::HttpState;
use crate::error::AppError;
use crate::error::Fields;
use crate::service::accounts::{self, NewAccount, ProfileUpdate};
use crate::web::session::{self, ACCESS_COOKIE, CsrfForm, REFRESH_COOKIE, Viewer};
use crate::web::view::Layout;
use crate::web::{PageError, form_problem, layout, local_path, render, render_with_status, see_other};

/// Where to go after signing in.
#[derive(Debug, Default, Deserialize)]
pub struct NextParams {
    next: Option<String>,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    layout: Layout,
    username: String,
    email: String,
    next: String,
    errors: Vec<String>,
}

/// `GET /signup`
pub async fn signup_form(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: web::Query<NextParams>,
) -> Result<HttpResponse, PageError> {
    let next = local_path(params.next.as_deref().unwrap_or("/"));
    let template = SignupPage {
        layout: layout(&state, &viewer).await?,
        username: String::new(),
        email: String::new(),
        next,
        errors: Vec::new(),
    };
    render(&req, &template)
}

/// The sign-up form.
#[derive(Debug, Deserialize)]
pub struct SignupForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /signup`: creates the account and signs the browser in.
pub async fn signup(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    form: CsrfForm<SignupForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let mut fields = Fields::default();
    let username = fields.check("username", Username::parse(form.username.trim()));
    let email = fields.check("email", EmailAddress::parse(form.email.trim()));
    let password = fields.check("password", Password::parse(&form.password));
    let input = fields.finish(username.zip(email).zip(password).map(|((username, email), password)| NewAccount {
        username,
        email,
        password,
    }));
    let registered = match input {
        Ok(input) => accounts::register(&state, input, &crate::edge::caller::user_agent(&req)).await,
        Err(err) => Err(err),
    };
    match registered {
        Ok(signed_in) => Ok(signed_in_redirect(&signed_in, &form.next)),
        Err(err) => {
            let (status, errors) = form_problem(err)?;
            let template = SignupPage {
                layout: layout(&state, &viewer).await?,
                username: form.username,
                email: form.email,
                next: local_path(&form.next),
                errors,
            };
            render_with_status(&req, &template, status)
        }
    }
}

fn signed_in_redirect(signed_in: &accounts::SignedIn, next: &str) -> HttpResponse {
    let mut response = see_other(&local_path(next));
    session::append_cookies(response.headers_mut(), session::signed_in_cookies(signed_in));
    response
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    layout: Layout,
    login: String,
    next: String,
    errors: Vec<String>,
    notice: Option<&'static str>,
}

/// Query of the sign-in page.
#[derive(Debug, Default, Deserialize)]
pub struct LoginParams {
    next: Option<String>,
    reset: Option<String>,
}

/// `GET /login`
pub async fn login_form(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: web::Query<LoginParams>,
) -> Result<HttpResponse, PageError> {
    let template = LoginPage {
        layout: layout(&state, &viewer).await?,
        login: String::new(),
        next: local_path(params.next.as_deref().unwrap_or("/")),
        errors: Vec::new(),
        notice: params.reset.is_some().then_some("Your password is changed. Sign in with the new one."),
    };
    render(&req, &template)
}

/// The sign-in form.
#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    login: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    next: String,
}

/// `POST /login`
pub async fn login(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    form: CsrfForm<LoginForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.0;
    match accounts::login(&state, form.login.trim(), &form.password, &crate::edge::caller::user_agent(&req)).await {
        Ok(signed_in) => Ok(signed_in_redirect(&signed_in, &form.next)),
        Err(err) => {
            let (status, errors) = form_problem(err)?;
            let template = LoginPage {
                layout: layout(&state, &viewer).await?,
                login: form.login,
                next: local_path(&form.next),
                errors,
                notice: None,
            };
            render_with_status(&req, &template, status)
        }
    }
}

/// `POST /logout`: ends the login session everywhere it is used and clears the cookies.
pub async fn logout(
    state: web::Data<HttpState>,
    viewer: Viewer,
    _form: CsrfForm<crate::web::thread::EmptyForm>,
) -> Result<HttpResponse, PageError> {
    if let Some(auth) = viewer.auth {
        accounts::logout(&state, auth).await?;
    }
    let mut response = see_other("/");
    session::append_cookies(
        response.headers_mut(),
        [session::clear_cookie(ACCESS_COOKIE), session::clear_cookie(REFRESH_COOKIE)],
    );
    Ok(response)
}

#[derive(Template)]
#[template(path = "reset.html")]
struct ResetPage {
    layout: Layout,
    sent: bool,
    errors: Vec<String>,
}

/// `GET /reset`: ask for a reset link.
pub async fn reset_form(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
) -> Result<HttpResponse, PageError> {
    render(&req, &ResetPage { layout: layout(&state, &viewer).await?, sent: false, errors: Vec::new() })
}

/// The reset request form.
#[derive(Debug, Deserialize)]
pub struct ResetForm {
    #[serde(default)]
    email: String,
}

/// `POST /reset`: the same answer whether or not the address has an account.
pub async fn reset(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    form: CsrfForm<ResetForm>,
) -> Result<HttpResponse, PageError> {
    let layout = layout(&state, &viewer).await?;
    let email = match EmailAddress::parse(form.0.email.trim()) {
        Ok(email) => email,
        Err(err) => {
            let errors = vec![format!("Email {err}")];
            return render_with_status(
                &req,
                &ResetPage { layout, sent: false, errors },
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    accounts::request_password_reset(&state, &email).await?;
    render(&req, &ResetPage { layout, sent: true, errors: Vec::new() })
}

#[derive(Template)]
#[template(path = "reset_confirm.html")]
struct ResetConfirmPage {
    layout: Layout,
    token: String,
    errors: Vec<String>,
}

/// Query of the reset link.
#[derive(Debug, Deserialize)]
pub struct TokenParams {
    #[serde(default)]
    token: String,
}

/// `GET /reset-password?token=`: the link of the reset email.
pub async fn reset_confirm_form(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: web::Query<TokenParams>,
) -> Result<HttpResponse, PageError> {
    let template =
        ResetConfirmPage { layout: layout(&state, &viewer).await?, token: params.token.clone(), errors: Vec::new() };
    render(&req, &template)
}

/// The new-password form.
#[derive(Debug, Deserialize)]
pub struct ResetConfirmForm {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

/// `POST /reset-password`: sets the new password; every login of the account ends.
pub async fn reset_confirm(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    form: CsrfForm<ResetConfirmForm>,
) -> Result<HttpResponse, PageError> {
    let form = form.0;
    let result = match Password::parse(&form.password) {
        Ok(password) => accounts::confirm_password_reset(&state, &form.token, &password).await,
        Err(err) => Err(AppError::invalid_field("password", err.to_string())),
    };
    match result {
        Ok(()) => Ok(see_other("/login?reset=done")),
        Err(err) => {
            let (status, errors) = form_problem(err)?;
            let template = ResetConfirmPage { layout: layout(&state, &viewer).await?, token: form.token, errors };
            render_with_status(&req, &template, status)
        }
    }
}

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    layout: Layout,
    email: String,
    bio: String,
    settings: NotificationSettings,
    avatar_url: Option<String>,
    /// Filtered keywords, one per line.
    keywords: String,
    blocks: crate::service::reader::BlockList,
    notice: Option<&'static str>,
    errors: Vec<String>,
}

/// The settings page as it stands, with a notice or the errors of a refused form.
async fn settings_page(
    state: &HttpState,
    viewer: &Viewer,
    notice: Option<&'static str>,
    errors: Vec<String>,
) -> Result<SettingsPage, PageError> {
    let auth = viewer.require()?;
    let me = accounts::me(state, auth).await?;
    Ok(SettingsPage {
        layout: layout(state, viewer).await?,
        email: me.email,
        bio: me.bio,
        settings: me.notification_settings,
        avatar_url: me.avatar_url,
        keywords: me.filtered_keywords.join("\n"),
        blocks: crate::service::reader::blocks(state, auth).await?,
        notice,
        errors,
    })
}

/// Query of the settings page.
#[derive(Debug, Default, Deserialize)]
pub struct SettingsParams {
    saved: Option<String>,
}

/// `GET /settings`
pub async fn settings(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: web::Query<SettingsParams>,
) -> Result<HttpResponse, PageError> {
    let notice = match params.saved.as_deref() {
        Some("password") => Some("Your password is changed. Other devices are signed out."),
        Some("profile") => Some("Your profile is saved."),
        Some("images") => Some("Your image settings are saved."),
        Some("filters") => Some("Your filters are saved."),
        Some(_) => Some("Your settings are saved."),
        None => None,
    };
    let template = settings_page(&state, &viewer, notice, Vec::new()).await?;
    render(&req, &template)
}

/// `POST /settings/images` (multipart): a new avatar, or its removal.
pub async fn save_images(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    mut multipart: actix_multipart::Multipart,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    let mut form = crate::edge::multipart::read(&state, &mut multipart).await?;
    crate::web::session::check_csrf(&req, form.text("csrf"))?;
    let avatar_id = match form.file.take() {
        Some(file) => match crate::web::upload_from_form(&req, &state, auth, file, "avatar").await {
            Ok(id) => Some(Some(id)),
            Err(err) => return settings_with_errors(&req, &state, &viewer, err).await,
        },
        None if form.checked("remove_avatar") => Some(None),
        None => None,
    };
    let update = ProfileUpdate { avatar_id, ..ProfileUpdate::default() };
    if let Err(err) = accounts::update_me(&state, auth, update).await {
        return settings_with_errors(&req, &state, &viewer, err).await;
    }
    Ok(see_other("/settings?saved=images"))
}

pub(crate) async fn settings_with_errors(
    req: &HttpRequest,
    state: &HttpState,
    viewer: &Viewer,
    err: AppError,
) -> Result<HttpResponse, PageError> {
    let (status, errors) = crate::web::form_problem(err)?;
    let template = settings_page(state, viewer, None, errors).await?;
    crate::web::render_with_status(req, &template, status)
}

/// The email preferences form: an unchecked box is absent.
#[derive(Debug, Deserialize)]
pub struct SettingsForm {
    email_on_reply: Option<String>,
    email_on_mention: Option<String>,
    email_on_message: Option<String>,
}

/// `POST /settings`
pub async fn save_settings(
    state: web::Data<HttpState>,
    viewer: Viewer,
    form: CsrfForm<SettingsForm>,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    let settings = NotificationSettings {
        email_on_reply: form.0.email_on_reply.is_some(),
        email_on_mention: form.0.email_on_mention.is_some(),
        email_on_message: form.0.email_on_message.is_some(),
    };
    let update = ProfileUpdate { notification_settings: Some(settings), ..ProfileUpdate::default() };
    accounts::update_me(&state, auth, update).await?;
    Ok(see_other("/settings?saved=notifications"))
}

/// The profile form.
#[derive(Debug, Deserialize)]
pub struct ProfileForm {
    #[serde(default)]
    bio: String,
}

/// `POST /settings/profile`
pub async fn save_profile(
    state: web::Data<HttpState>,
    viewer: Viewer,
    form: CsrfForm<ProfileForm>,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    let bio = crate::domain::Bio::parse(&form.0.bio).map_err(|err| AppError::invalid_field("bio", err.to_string()))?;
    accounts::update_me(&state, auth, ProfileUpdate { bio: Some(bio), ..ProfileUpdate::default() }).await?;
    Ok(see_other("/settings?saved=profile"))
}

/// The password change form.
#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    current_password: String,
    #[serde(default)]
    new_password: String,
}

/// `POST /settings/password`: checks the current password, sets the new one, ends every other
/// login and signs this browser in again.
pub async fn change_password(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    form: CsrfForm<PasswordForm>,
) -> Result<HttpResponse, PageError> {
    let auth = viewer.require()?;
    let form = form.0;
    let result = match Password::parse(&form.new_password) {
        Ok(new) => {
            accounts::change_password(
                &state,
                auth,
                &form.current_password,
                &new,
                &crate::edge::caller::user_agent(&req),
            )
            .await
        }
        Err(err) => Err(AppError::invalid_field("new_password", err.to_string())),
    };
    match result {
        Ok(signed_in) => Ok(signed_in_redirect(&signed_in, "/settings?saved=password")),
        Err(err) => settings_with_errors(&req, &state, &viewer, err).await,
    }
}

#[derive(Template)]
#[template(path = "unsubscribe.html")]
struct UnsubscribePage {
    layout: Layout,
    token: String,
    done: Option<accounts::Unsubscribed>,
}

/// `GET /unsubscribe?token=`: the link of a notification email. It asks before it acts, so a
/// mail scanner that follows every link changes nothing.
pub async fn unsubscribe_form(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: web::Query<TokenParams>,
) -> Result<HttpResponse, PageError> {
    let template = UnsubscribePage { layout: layout(&state, &viewer).await?, token: params.token.clone(), done: None };
    render(&req, &template)
}

/// `POST /unsubscribe`: no sign-in needed; the signed token says who and what.
pub async fn unsubscribe(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    form: CsrfForm<TokenParams>,
) -> Result<HttpResponse, PageError> {
    let done = accounts::unsubscribe(&state, &form.0.token).await?;
    let template = UnsubscribePage { layout: layout(&state, &viewer).await?, token: String::new(), done: Some(done) };
    render(&req, &template)
}
