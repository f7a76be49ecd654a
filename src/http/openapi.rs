//! The OpenAPI 3.1 document of the API, generated from the handlers' annotations and the
//! types they exchange, served at `/api/v1/openapi.json`.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::domain::{CommentSort, CommunitySort, NotificationSettings, PostSort, TimeWindow};
use crate::edge::problem::Problem;
use crate::error::FieldError;
use crate::http::{accounts, comments, communities, moderation, ops, posts, users};
use crate::service::accounts::{OwnUser, SignedIn, TokenPair, Unsubscribed};
use crate::service::comments::{Comment, Tree};
use crate::service::communities::CommunityView;
use crate::service::moderation::ModlogItem;
use crate::service::moderation::{ModlogEntry, ReportView};
use crate::service::posts::PostView;
use crate::service::posts::{Post, VoteResult};
use crate::service::users::PublicUser;

/// The API description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agora API",
        description = "Communities, posts, nested comments, votes and moderation. Errors are RFC 9457 \
                       application/problem+json with a stable `code`. Lists are keyset-paginated: pass \
                       `next_cursor` back as `cursor`. POST and PUT accept an `Idempotency-Key` header."
    ),
    paths(
        accounts::register, accounts::login, accounts::refresh, accounts::logout,
        accounts::request_password_reset, accounts::confirm_password_reset, accounts::me, accounts::update_me, accounts::unsubscribe,
        users::get_user,
        communities::create, communities::list, communities::get, communities::edit, communities::join,
        communities::leave, communities::add_moderator, communities::remove_moderator, communities::ban,
        posts::create, posts::list, posts::get, posts::edit, posts::delete, posts::vote, posts::summary, posts::search,
        comments::create, comments::tree, comments::subtree, comments::edit, comments::delete, comments::vote,
        moderation::post_action, moderation::comment_action, moderation::report_post, moderation::report_comment,
        moderation::reports, moderation::resolve_report, moderation::modlog,
        ops::live, ops::ready, ops::metrics,
    ),
    components(schemas(
        Problem, FieldError, OwnUser, SignedIn, TokenPair, PublicUser, NotificationSettings, CommunityView,
        PostView, Post, VoteResult, Comment, Tree, ModlogEntry, ModlogItem, ReportView, PostSort, TimeWindow,
        CommentSort, CommunitySort, Unsubscribed, crate::summaries::SummaryView,
    )),
    modifiers(&BearerAuth, &RateLimited),
    tags(
        (name = "accounts", description = "Registration, sign-in, tokens and the caller's profile"),
        (name = "communities", description = "Communities, membership and moderators"),
        (name = "posts", description = "Posts, listings, votes and search"),
        (name = "comments", description = "Nested comments"),
        (name = "moderation", description = "Removal, locks, pins, bans, reports and the modlog"),
        (name = "operations", description = "Health and metrics"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let scheme = HttpBuilder::new().scheme(HttpAuthScheme::Bearer).bearer_format("JWT").build();
        openapi
            .components
            .get_or_insert_with(Default::default)
            .add_security_scheme("bearer", SecurityScheme::Http(scheme));
    }
}

/// Every `/api/v1` operation is rate limited: document its 429.
struct RateLimited;

impl Modify for RateLimited {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
        let response = ResponseBuilder::new()
            .description(
                "rate_limited: too many requests; Retry-After and RateLimit-Limit/Remaining/Reset say when to retry",
            )
            .content(
                "application/problem+json",
                ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
            )
            .build();
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for operation in operations.into_iter().flatten() {
                operation.responses.responses.insert("429".to_owned(), response.clone().into());
            }
        }
    }
}

/// `GET /api/v1/openapi.json`
pub async fn document() -> HttpResponse {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    HttpResponse::Ok().json(doc)
}
