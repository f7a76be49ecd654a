//! The OpenAPI 3.1 document of the API, generated from the handlers' annotations and the
//! types they exchange, served at `/api/v1/openapi.json`.

use actix_web::HttpResponse;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::domain::{CommentSort, CommunitySort, NotificationSettings, PostSort, TimeWindow};
use crate::edge::problem::Problem;
use crate::error::{ErrorCode, FieldError};
use crate::http::{accounts, comments, communities, inbox, media, messages, moderation, ops, posts, reader, users};
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
        users::get_user, users::posts, users::comments,
        inbox::list, inbox::read, inbox::read_all, inbox::unread,
        reader::save_post, reader::unsave_post, reader::hide_post, reader::unhide_post, reader::save_comment,
        reader::unsave_comment, reader::saved, reader::block_user, reader::unblock_user, reader::block_community,
        reader::unblock_community, reader::blocks,
        messages::send, messages::conversation, messages::report,
        communities::create, communities::list, communities::get, communities::edit, communities::join,
        communities::leave, communities::add_moderator, communities::remove_moderator, communities::ban,
        posts::create, posts::list, posts::get, posts::edit, posts::delete, posts::vote, posts::summary, posts::search,
        comments::create, comments::tree, comments::subtree, comments::edit, comments::delete, comments::vote,
        moderation::post_action, moderation::comment_action, moderation::report_post, moderation::report_comment,
        moderation::reports, moderation::resolve_report, moderation::modlog,
        media::upload, media::get, media::delete, media::file,
        ops::live, ops::ready, ops::metrics,
    ),
    components(schemas(
        Problem, FieldError, OwnUser, SignedIn, TokenPair, PublicUser, NotificationSettings, CommunityView,
        PostView, Post, VoteResult, Comment, Tree, ModlogEntry, ModlogItem, ReportView, PostSort, TimeWindow,
        CommentSort, CommunitySort, crate::domain::content::ProfileSort, crate::domain::content::Feed, Unsubscribed, crate::summaries::SummaryView,
        crate::service::inbox::InboxItem, inbox::Unread, crate::service::media::Upload, crate::domain::media::ImageUrls, crate::service::posts::PostImage,
        crate::service::reader::BlockList, crate::service::reader::SavedItem, crate::service::messages::Message,
    )),
    modifiers(&BearerAuth, &CommonResponses, &Links),
    tags(
        (name = "accounts", description = "Registration, sign-in, tokens and the caller's profile"),
        (name = "communities", description = "Communities, membership and moderators"),
        (name = "posts", description = "Posts, listings, votes and search"),
        (name = "comments", description = "Nested comments"),
        (name = "moderation", description = "Removal, locks, pins, bans, reports and the modlog"),
        (name = "media", description = "Image uploads and the stored images"),
        (name = "messages", description = "Private messages between users"),
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

/// The answers every operation of a kind can give, documented once here rather than at each
/// handler: malformed bodies and path parameters, sign-in, rate limits, a database outage.
struct CommonResponses;

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::path::{Operation, ParameterIn};
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        fn add(operation: &mut Operation, status: &str, code: ErrorCode, why: &str) {
            let response = ResponseBuilder::new()
                .description(format!("{}: {why}", code.as_str()))
                .content(
                    "application/problem+json",
                    ContentBuilder::new().schema(Some(Ref::from_schema_name("Problem"))).build(),
                )
                .build();
            operation.responses.responses.entry(status.to_owned()).or_insert(response.into());
        }
        for (path, item) in openapi.paths.paths.iter_mut() {
            if !path.starts_with("/api/v1/") {
                continue;
            }
            let templated = path.contains('{');
            let operations = [
                (&mut item.get, false),
                (&mut item.put, true),
                (&mut item.post, true),
                (&mut item.delete, true),
                (&mut item.patch, true),
            ];
            for (operation, is_write) in operations {
                let Some(operation) = operation else { continue };
                let has_body = operation.request_body.is_some();
                let has_query = operation.parameters.iter().flatten().any(|parameter| match parameter {
                    RefOr::T(parameter) => parameter.parameter_in == ParameterIn::Query,
                    RefOr::Ref(_) => false,
                });
                if has_body {
                    add(operation, "400", ErrorCode::BadRequest, "the body is not valid JSON");
                    add(operation, "413", ErrorCode::PayloadTooLarge, "the body is larger than server.max_body_bytes");
                    add(operation, "415", ErrorCode::UnsupportedMediaType, "the body must be application/json");
                }
                if templated {
                    add(operation, "400", ErrorCode::BadRequest, "a path parameter does not parse");
                }
                if has_body || has_query {
                    add(operation, "422", ErrorCode::ValidationFailed, "invalid fields, listed in `errors`");
                }
                if operation.security.is_some() {
                    add(operation, "401", ErrorCode::Unauthorized, "missing or invalid access token");
                }
                add(
                    operation,
                    "429",
                    ErrorCode::RateLimited,
                    "too many requests; Retry-After and RateLimit-Limit/Remaining/Reset say when to retry",
                );
                add(operation, "503", ErrorCode::ServiceUnavailable, "the database is unavailable; retry later");
                if is_write {
                    add(
                        operation,
                        "507",
                        ErrorCode::InsufficientStorage,
                        "a disk is full: nothing was written; Retry-After says when to retry",
                    );
                }
            }
        }
    }
}

/// Links from what a create answers to the operations on the new resource, so clients (and
/// schemathesis's stateful phase) can follow them: `(from path, method, link name, to path,
/// to method, parameter, runtime expression)`. Deletes are left out: a deleted post or comment
/// stays readable, blanked, by contract, which a generic "deleted means gone" check would flag.
const LINKS: &[(&str, &str, &str, &str, &str, &str, &str)] = &[
    (
        "/api/v1/communities",
        "post",
        "GetCommunity",
        "/api/v1/communities/{name}",
        "get",
        "name",
        "$response.body#/name",
    ),
    (
        "/api/v1/communities",
        "post",
        "EditCommunity",
        "/api/v1/communities/{name}",
        "patch",
        "name",
        "$response.body#/name",
    ),
    (
        "/api/v1/communities",
        "post",
        "JoinCommunity",
        "/api/v1/communities/{name}/membership",
        "put",
        "name",
        "$response.body#/name",
    ),
    (
        "/api/v1/communities",
        "post",
        "PostInCommunity",
        "/api/v1/communities/{name}/posts",
        "post",
        "name",
        "$response.body#/name",
    ),
    ("/api/v1/communities/{name}/posts", "post", "GetPost", "/api/v1/posts/{id}", "get", "id", "$response.body#/id"),
    ("/api/v1/communities/{name}/posts", "post", "EditPost", "/api/v1/posts/{id}", "patch", "id", "$response.body#/id"),
    (
        "/api/v1/communities/{name}/posts",
        "post",
        "VoteOnPost",
        "/api/v1/posts/{id}/vote",
        "put",
        "id",
        "$response.body#/id",
    ),
    (
        "/api/v1/communities/{name}/posts",
        "post",
        "CommentOnPost",
        "/api/v1/posts/{id}/comments",
        "post",
        "id",
        "$response.body#/id",
    ),
    (
        "/api/v1/communities/{name}/posts",
        "post",
        "ReadComments",
        "/api/v1/posts/{id}/comments",
        "get",
        "id",
        "$response.body#/id",
    ),
    ("/api/v1/posts/{id}/comments", "post", "GetComment", "/api/v1/comments/{id}", "get", "id", "$response.body#/id"),
    (
        "/api/v1/posts/{id}/comments",
        "post",
        "EditComment",
        "/api/v1/comments/{id}",
        "patch",
        "id",
        "$response.body#/id",
    ),
    (
        "/api/v1/posts/{id}/comments",
        "post",
        "VoteOnComment",
        "/api/v1/comments/{id}/vote",
        "put",
        "id",
        "$response.body#/id",
    ),
];

struct Links;

impl Modify for Links {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::RefOr;
        use utoipa::openapi::link::LinkBuilder;
        for (from, method, name, to, to_method, parameter, expression) in LINKS {
            let Some(item) = openapi.paths.paths.get_mut(*from) else { continue };
            let operation = match *method {
                "post" => item.post.as_mut(),
                _ => None,
            };
            let Some(operation) = operation else { continue };
            let Some(RefOr::T(created)) = operation.responses.responses.get_mut("201") else { continue };
            // A JSON Pointer to the target operation: `/` in the path is `~1`.
            let target = format!("#/paths/{}/{to_method}", to.replace('~', "~0").replace('/', "~1"));
            let link = LinkBuilder::new().operation_ref(target).parameter(*parameter, *expression).build();
            created.links.insert((*name).to_owned(), link.into());
        }
    }
}

/// `GET /api/v1/openapi.json`
pub async fn document() -> HttpResponse {
    let mut doc = ApiDoc::openapi();
    doc.info.version = env!("CARGO_PKG_VERSION").to_owned();
    HttpResponse::Ok().json(doc)
}
