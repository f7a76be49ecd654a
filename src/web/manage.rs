//! Pages that change communities: submit a post, create a community, join and leave, and the
//! moderator tools (remove/restore, lock, pin, ban, the reports queue and the mod log).

use actix_web::{HttpRequest, HttpResponse, web};
use askama::Template;
use chrono::Utc;
use serde::Deserialize;

use crate::domain::{
    Body, CommentId, CommunityTitle, Description, LinkUrl, PostId, PostTitle, Reason, Rules, Username,
};
use crate::edge::HttpState;
use crate::error::AppError;
use crate::error::Fields;
use crate::service::communities::CommunityView;
use crate::service::communities::{self, NewBan};
use crate::service::moderation::{self, PostAction, Why};
use crate::service::moderation::{ModlogEntry, ReportView};
use crate::service::posts::{self, NewPostInput};
use crate::web::session::{CsrfForm, Viewer};
use crate::web::thread::EmptyForm;
use crate::web::view::{Layout, Time};
use crate::web::{PageError, form_problem, layout, render, render_with_status, see_other};

/// The submit form's fields, kept when it is shown again with errors.
#[derive(Debug, Default, Deserialize)]
pub struct SubmitForm {
    #[serde(default)]
    community: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    url: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    nsfw: String,
    #[serde(default)]
    spoiler: String,
}

#[derive(Template)]
#[template(path = "submit.html")]
struct SubmitPage {
    layout: Layout,
    form: SubmitForm,
    errors: Vec<String>,
    max_upload_mib: u64,
}

/// Query of the submit page.
#[derive(Debug, Deserialize)]
pub struct SubmitParams {
    community: Option<String>,
}

/// `GET /submit?community=`: the form for a text or link post.
pub async fn submit_form(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    params: web::Query<SubmitParams>,
) -> Result<HttpResponse, PageError> {
    viewer.require()?;
    let form = SubmitForm { community: params.community.clone().unwrap_or_default(), ..SubmitForm::default() };
    render(
        &req,
        &SubmitPage {
            layout: layout(&state, &viewer).await?,
            form,
            errors: Vec::new(),
            max_upload_mib: state.config.media.max_upload_bytes >> 20,
        },
    )
}

/// `POST /submit` as a urlencoded form (a text or link post).
pub async fn submit(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    form: CsrfForm<SubmitForm>,
) -> Result<HttpResponse, PageError> {
    let author = viewer.require()?;
    let form = form.0;
    create_post(&req, &state, &viewer, author, form, Ok(None)).await
}

/// `POST /submit` as a multipart form: the same fields plus an optional image (`file`).
pub async fn submit_with_image(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    mut multipart: actix_multipart::Multipart,
) -> Result<HttpResponse, PageError> {
    let author = viewer.require()?;
    let mut read = crate::edge::multipart::read(&state, &mut multipart).await?;
    crate::web::session::check_csrf(&req, read.text("csrf"))?;
    let form = SubmitForm {
        community: read.text("community").to_owned(),
        title: read.text("title").to_owned(),
        url: read.text("url").to_owned(),
        body: read.text("body").to_owned(),
        nsfw: read.text("nsfw").to_owned(),
        spoiler: read.text("spoiler").to_owned(),
    };
    let image = match read.file.take() {
        None => Ok(None),
        Some(file) => crate::web::upload_from_form(&req, &state, author, file, "image").await.map(Some),
    };
    create_post(&req, &state, &viewer, author, form, image).await
}

async fn create_post(
    req: &HttpRequest,
    state: &HttpState,
    viewer: &Viewer,
    author: crate::service::accounts::Authenticated,
    form: SubmitForm,
    image: Result<Option<i64>, AppError>,
) -> Result<HttpResponse, PageError> {
    let mut fields = Fields::default();
    let title = fields.check("title", PostTitle::parse(&form.title));
    let body = fields.check("text", Body::parse_post(&form.body));
    let url = match form.url.trim() {
        "" => Some(None),
        url => fields.check("link", LinkUrl::parse(url)).map(Some),
    };
    let community = form.community.trim().trim_start_matches("c/").to_owned();
    let (nsfw, spoiler) = (!form.nsfw.is_empty(), !form.spoiler.is_empty());
    let input = fields.finish(title.zip(body).zip(url).map(|((title, body), url)| NewPostInput {
        title,
        body,
        url,
        image_id: None,
        nsfw,
        spoiler,
    }));
    let created = match (input, image) {
        (Ok(mut input), Ok(image_id)) => {
            input.image_id = image_id;
            posts::create(state, author, &crate::edge::names::community(&community)?, input).await
        }
        (Err(err), _) | (_, Err(err)) => Err(err),
    };
    match created {
        Ok(post) => Ok(see_other(&format!("/p/{}", post.view.id))),
        Err(err) => {
            let (status, errors) = form_problem(err)?;
            let max_upload_mib = state.config.media.max_upload_bytes >> 20;
            let template = SubmitPage { layout: layout(state, viewer).await?, form, errors, max_upload_mib };
            render_with_status(req, &template, status)
        }
    }
}

/// The new-community form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct CommunityForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    /// One rule per line.
    #[serde(default)]
    rules: String,
}

#[derive(Template)]
#[template(path = "community_new.html")]
struct NewCommunityPage {
    layout: Layout,
    form: CommunityForm,
    errors: Vec<String>,
}

/// `GET /communities/new`
pub async fn new_community(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
) -> Result<HttpResponse, PageError> {
    viewer.require()?;
    let template =
        NewCommunityPage { layout: layout(&state, &viewer).await?, form: CommunityForm::default(), errors: Vec::new() };
    render(&req, &template)
}

/// `POST /communities/new`: the creator becomes its first moderator.
pub async fn create_community(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    form: CsrfForm<CommunityForm>,
) -> Result<HttpResponse, PageError> {
    let creator = viewer.require()?;
    let form = form.0;
    let rules = one_per_line(&form.rules);
    let input =
        crate::service::communities::NewCommunity::parse(form.name.trim(), &form.title, &form.description, &rules);
    let created = match input {
        Ok(input) => communities::create(&state, creator, input).await,
        Err(err) => Err(err),
    };
    match created {
        Ok(community) => Ok(see_other(&format!("/c/{}", community.name))),
        Err(err) => {
            let (status, errors) = form_problem(err)?;
            let template = NewCommunityPage { layout: layout(&state, &viewer).await?, form, errors };
            render_with_status(&req, &template, status)
        }
    }
}

/// The non-empty lines of a textarea (rules are entered one per line).
fn one_per_line(text: &str) -> Vec<String> {
    text.lines().map(str::trim).filter(|line| !line.is_empty()).map(str::to_owned).collect()
}

/// Join or leave.
#[derive(Debug, Deserialize)]
pub struct MembershipForm {
    #[serde(default)]
    action: String,
}

/// `POST /c/{name}/membership` with `action=join|leave`.
pub async fn membership(
    state: web::Data<HttpState>,
    viewer: Viewer,
    name: web::Path<String>,
    form: CsrfForm<MembershipForm>,
) -> Result<HttpResponse, PageError> {
    let user = viewer.require()?;
    match form.0.action.as_str() {
        "join" => communities::join(&state, user, &crate::edge::names::community(&name)?).await?,
        "leave" => communities::leave(&state, user, &crate::edge::names::community(&name)?).await?,
        _ => return Err(AppError::invalid_field("action", "must be join or leave").into()),
    }
    Ok(see_other(&format!("/c/{name}")))
}

/// A moderator action with its reason.
#[derive(Debug, Deserialize)]
pub struct ModerationForm {
    #[serde(default)]
    action: String,
    #[serde(default)]
    reason: String,
}

fn why(form: &ModerationForm) -> Result<Why, PageError> {
    let reason = Reason::parse(&form.reason).map_err(|err| AppError::invalid_field("reason", err.to_string()))?;
    Ok(Why { rule_index: None, reason })
}

/// `POST /p/{id}/mod` with `action=remove|restore|lock|unlock|pin|unpin`.
pub async fn moderate_post(
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    form: CsrfForm<ModerationForm>,
) -> Result<HttpResponse, PageError> {
    let actor = viewer.require()?;
    let action = PostAction::parse(&form.0.action)
        .ok_or_else(|| AppError::invalid_field("action", "must be remove, restore, lock, unlock, pin or unpin"))?;
    let post = moderation::moderate_post(&state, actor, PostId(*id), action, why(&form.0)?).await?;
    Ok(see_other(&format!("/p/{}", post.view.id)))
}

/// `POST /comments/{id}/mod` with `action=remove|restore`.
pub async fn moderate_comment(
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    form: CsrfForm<ModerationForm>,
) -> Result<HttpResponse, PageError> {
    let actor = viewer.require()?;
    let remove = match form.0.action.as_str() {
        "remove" => true,
        "restore" => false,
        _ => return Err(AppError::invalid_field("action", "must be remove or restore").into()),
    };
    let comment = moderation::moderate_comment(&state, actor, CommentId(*id), remove, why(&form.0)?).await?;
    Ok(see_other(&format!("/p/{}#c{}", comment.post_id, comment.id)))
}

#[derive(Template)]
#[template(path = "mod.html")]
struct ModPage {
    layout: Layout,
    community: CommunityView,
    reports: Vec<(ReportView, Time)>,
    notice: Option<String>,
}

/// Query of the moderation page.
#[derive(Debug, Deserialize)]
pub struct ModParams {
    notice: Option<String>,
}

/// `GET /c/{name}/mod`: the open reports and the ban form (moderators and admins).
pub async fn mod_queue(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    name: web::Path<String>,
    params: web::Query<ModParams>,
) -> Result<HttpResponse, PageError> {
    let reader = viewer.require()?;
    let community = communities::get(&state, &crate::edge::names::community(&name)?, Some(reader)).await?;
    let reports = moderation::open_reports(
        &state,
        reader,
        Some(&crate::edge::names::community(&community.name)?),
        crate::domain::Limit::fixed(100),
        None,
    )
    .await?;
    let now = Utc::now();
    let reports = reports.items.into_iter().map(|r| (Time::at(r.created_at, now), r)).map(|(t, r)| (r, t)).collect();
    let notice = match params.notice.as_deref() {
        Some("banned") => Some("The user is banned from this community.".to_owned()),
        Some("resolved") => Some("The report is closed.".to_owned()),
        _ => None,
    };
    render(&req, &ModPage { layout: layout(&state, &viewer).await?, community, reports, notice })
}

/// The ban form.
#[derive(Debug, Deserialize)]
pub struct BanForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    reason: String,
    /// Days; empty for a permanent ban.
    #[serde(default)]
    days: String,
}

/// `POST /c/{name}/ban`
pub async fn ban(
    state: web::Data<HttpState>,
    viewer: Viewer,
    name: web::Path<String>,
    form: CsrfForm<BanForm>,
) -> Result<HttpResponse, PageError> {
    let actor = viewer.require()?;
    let form = form.0;
    let mut fields = Fields::default();
    let username = fields.check("username", Username::parse(form.username.trim()));
    let expires_at = match form.days.trim() {
        "" => Some(None),
        days => fields
            .check("days", days.parse::<u16>().map_err(|_| "must be a whole number of days (1–65535)"))
            .map(|days| Some(Utc::now() + chrono::Duration::days(i64::from(days.max(1))))),
    };
    let ban = fields.finish(username.zip(expires_at).map(|(username, expires_at)| NewBan {
        username,
        reason: form.reason.clone(),
        expires_at,
    }))?;
    communities::ban(&state, actor, &crate::edge::names::community(&name)?, ban).await?;
    Ok(see_other(&format!("/c/{name}/mod?notice=banned")))
}

/// `POST /reports/{id}/resolve`
pub async fn resolve_report(
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    _form: CsrfForm<EmptyForm>,
    req: HttpRequest,
) -> Result<HttpResponse, PageError> {
    let actor = viewer.require()?;
    moderation::resolve_report(&state, actor, *id).await?;
    let back = crate::web::referer_path(&req);
    let back = back.split('?').next().unwrap_or("/");
    Ok(see_other(&format!("{back}?notice=resolved")))
}

#[derive(Template)]
#[template(path = "modlog.html")]
struct ModlogPage {
    layout: Layout,
    community: String,
    entries: Vec<(ModlogEntry, Time)>,
    next_href: Option<String>,
}

/// Query of the mod log.
#[derive(Debug, Deserialize)]
pub struct ModlogParams {
    cursor: Option<String>,
}

/// `GET /c/{name}/modlog`: what the community's moderators did, newest first.
pub async fn modlog(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    name: web::Path<String>,
    params: web::Query<ModlogParams>,
) -> Result<HttpResponse, PageError> {
    let reader = viewer.require()?;
    let page = moderation::modlog(
        &state,
        reader,
        Some(&crate::edge::names::community(&name)?),
        crate::domain::Limit::fixed(50),
        params.cursor.as_deref(),
    )
    .await?;
    let now = Utc::now();
    let entries = page
        .items
        .into_iter()
        .map(|item| (Time::at(item.entry.created_at, now), item.entry))
        .map(|(t, e)| (e, t))
        .collect();
    let next_href = page.next_cursor.map(|cursor| {
        format!("/c/{name}/modlog?{}", serde_urlencoded::to_string([("cursor", cursor)]).unwrap_or_default())
    });
    render(
        &req,
        &ModlogPage { layout: layout(&state, &viewer).await?, community: name.into_inner(), entries, next_href },
    )
}

/// A report: why the post or comment breaks the rules.
#[derive(Debug, Deserialize)]
pub struct ReportForm {
    #[serde(default)]
    reason: String,
    /// A rule of the community, numbered from 1 as shown; empty for none.
    #[serde(default)]
    rule: String,
}

/// `POST /p/{id}/report`
pub async fn report_post(
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    form: CsrfForm<ReportForm>,
) -> Result<HttpResponse, PageError> {
    let reporter = viewer.require()?;
    let id = id.into_inner();
    report(&state, reporter, moderation::ReportTarget::Post(PostId(id)), &form.0).await?;
    Ok(see_other(&format!("/p/{id}?reported=1")))
}

/// `POST /comments/{id}/report`
pub async fn report_comment(
    state: web::Data<HttpState>,
    viewer: Viewer,
    id: web::Path<i64>,
    form: CsrfForm<ReportForm>,
) -> Result<HttpResponse, PageError> {
    let reporter = viewer.require()?;
    let id = id.into_inner();
    let post_id = report(&state, reporter, moderation::ReportTarget::Comment(CommentId(id)), &form.0).await?;
    Ok(see_other(&format!("/p/{post_id}?reported=1#c{id}")))
}

/// Files the report; answers the post the reported thing belongs to.
async fn report(
    state: &HttpState,
    reporter: crate::service::accounts::Authenticated,
    target: moderation::ReportTarget,
    form: &ReportForm,
) -> Result<i64, PageError> {
    let reason = Reason::parse(form.reason.trim()).map_err(|err| AppError::invalid_field("reason", err.to_string()))?;
    let rule_index = match form.rule.trim() {
        "" => None,
        number => Some(
            number
                .parse::<i32>()
                .ok()
                .and_then(|n| n.checked_sub(1))
                .ok_or_else(|| AppError::invalid_field("rule", "is not a rule of this community"))?,
        ),
    };
    moderation::report(state, reporter, target, Why { rule_index, reason }).await?;
    Ok(match target {
        moderation::ReportTarget::Post(post) => post.0,
        moderation::ReportTarget::Comment(comment) => {
            crate::service::comments::one(state, comment, Some(reporter)).await?.post_id
        }
    })
}

#[derive(Template)]
#[template(path = "community_settings.html")]
struct CommunitySettingsPage {
    layout: Layout,
    community: CommunityView,
    rules_text: String,
    errors: Vec<String>,
    notice: Option<&'static str>,
}

/// Query of the community settings page.
#[derive(Debug, Deserialize)]
pub struct SavedParams {
    saved: Option<String>,
}

/// `GET /c/{name}/settings`: title, description, rules, the summaries switch and the
/// moderator list (moderators and admins).
pub async fn community_settings(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    name: web::Path<String>,
    params: web::Query<SavedParams>,
) -> Result<HttpResponse, PageError> {
    let editor = viewer.require()?;
    let community = communities::get(&state, &crate::edge::names::community(&name)?, Some(editor)).await?;
    let layout = layout(&state, &viewer).await?;
    let username = layout.username.clone().unwrap_or_default();
    if !moderation::may_moderate_view(&state, editor, &username, &community).await? {
        return Err(AppError::forbidden("only moderators can change this community").into());
    }
    let notice = params.saved.as_ref().map(|_| "Saved.");
    let rules_text = community.rules.join("\n");
    let template = CommunitySettingsPage { layout, community, rules_text, errors: Vec::new(), notice };
    render(&req, &template)
}

/// The community settings form; an unchecked box is absent.
#[derive(Debug, Deserialize)]
pub struct CommunitySettingsForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    rules: String,
    summaries_enabled: Option<String>,
}

/// `POST /c/{name}/settings`
pub async fn save_community_settings(
    req: HttpRequest,
    state: web::Data<HttpState>,
    viewer: Viewer,
    name: web::Path<String>,
    form: CsrfForm<CommunitySettingsForm>,
) -> Result<HttpResponse, PageError> {
    let editor = viewer.require()?;
    let form = form.0;
    let rules = one_per_line(&form.rules);
    let mut fields = Fields::default();
    let title = fields.check("title", CommunityTitle::parse(&form.title));
    let description = fields.check("description", Description::parse(&form.description));
    let rules = fields.check("rules", Rules::parse(&rules));
    let edit = fields.finish(title.zip(description).zip(rules).map(|((title, description), rules)| {
        communities::CommunityEdit {
            title: Some(title),
            description: Some(description),
            rules: Some(rules),
            summaries_enabled: Some(form.summaries_enabled.is_some()),
        }
    }));
    let saved = match edit {
        Ok(edit) => communities::edit(&state, editor, &crate::edge::names::community(&name)?, edit).await,
        Err(err) => Err(err),
    };
    match saved {
        Ok(community) => Ok(see_other(&format!("/c/{}/settings?saved=1", community.name))),
        Err(err) => {
            let (status, errors) = form_problem(err)?;
            let community = communities::get(&state, &crate::edge::names::community(&name)?, Some(editor)).await?;
            let template = CommunitySettingsPage {
                layout: layout(&state, &viewer).await?,
                community,
                rules_text: form.rules,
                errors,
                notice: None,
            };
            render_with_status(&req, &template, status)
        }
    }
}

/// Add or remove a moderator.
#[derive(Debug, Deserialize)]
pub struct ModeratorForm {
    #[serde(default)]
    username: String,
    #[serde(default)]
    action: String,
}

/// `POST /c/{name}/moderators` with `action=add|remove`.
pub async fn moderators(
    state: web::Data<HttpState>,
    viewer: Viewer,
    name: web::Path<String>,
    form: CsrfForm<ModeratorForm>,
) -> Result<HttpResponse, PageError> {
    let actor = viewer.require()?;
    let add = match form.0.action.as_str() {
        "add" => true,
        "remove" => false,
        _ => return Err(AppError::invalid_field("action", "must be add or remove").into()),
    };
    let username =
        Username::parse(form.0.username.trim()).map_err(|err| AppError::invalid_field("username", err.to_string()))?;
    communities::set_moderator(&state, actor, &crate::edge::names::community(&name)?, &username, add).await?;
    Ok(see_other(&format!("/c/{name}/settings?saved=1")))
}
