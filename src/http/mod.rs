//! The HTTP surface: routes, extractor configuration, middleware and error bodies.
//! Handlers stay thin; the rules live in `service`.

pub mod accounts;
pub mod auth;
pub mod body;
pub mod comments;
pub mod communities;
pub mod idempotency;
pub mod inbox;
pub mod integers;
pub mod media;
pub mod messages;
pub mod moderation;
pub mod openapi;
pub mod ops;
pub mod posts;
pub mod reader;
pub mod users;

use actix_web::web;

use crate::edge::{problem, rate_limit};

/// Registers the public routes and the extractor settings every handler shares.
pub fn configure_public(cfg: &mut web::ServiceConfig, max_body_bytes: usize, serve_metrics: bool) {
    cfg.app_data(web::JsonConfig::default().limit(max_body_bytes).error_handler(problem::json_error))
        .app_data(web::PayloadConfig::default().limit(max_body_bytes))
        .app_data(web::PathConfig::default().error_handler(problem::path_error))
        .app_data(web::QueryConfig::default().error_handler(problem::query_error))
        .service(web::resource("/health/live").route(web::get().to(ops::live)))
        .service(web::resource("/health/ready").route(web::get().to(ops::ready)))
        .service(web::resource("/media/{key}").route(web::get().to(media::file)))
        .configure(api_v1);
    // Always routed, so other methods get 405 and a public scrape learns where metrics are.
    let metrics = if serve_metrics { web::get().to(ops::metrics) } else { web::get().to(ops::metrics_elsewhere) };
    cfg.service(web::resource("/metrics").route(metrics));
}

/// The JSON API: the route table of `/api/v1`.
fn api_v1(cfg: &mut web::ServiceConfig) {
    use web::{delete, get, patch, post, put, resource};
    let scope = web::scope("/api/v1")
        .wrap(actix_web::middleware::from_fn(idempotency::idempotency))
        // Wrapped last, so it runs first: a refused request costs no body read and no query.
        .wrap(actix_web::middleware::from_fn(rate_limit::rate_limit))
        .service(resource("/auth/register").route(post().to(accounts::register)))
        .service(resource("/auth/login").route(post().to(accounts::login)))
        .service(resource("/auth/refresh").route(post().to(accounts::refresh)))
        .service(resource("/auth/logout").route(post().to(accounts::logout)))
        .service(resource("/auth/password-reset").route(post().to(accounts::request_password_reset)))
        .service(resource("/auth/password-reset/confirm").route(post().to(accounts::confirm_password_reset)))
        .service(
            resource("/unsubscribe").route(get().to(accounts::unsubscribe)).route(post().to(accounts::unsubscribe)),
        )
        .service(resource("/me").route(get().to(accounts::me)).route(patch().to(accounts::update_me)))
        .service(resource("/me/inbox").route(get().to(inbox::list)))
        .service(resource("/me/inbox/read-all").route(post().to(inbox::read_all)))
        .service(resource("/me/inbox/{id}/read").route(post().to(inbox::read)))
        .service(resource("/me/unread").route(get().to(inbox::unread)))
        .service(resource("/me/saved").route(get().to(reader::saved)))
        .service(resource("/me/blocks").route(get().to(reader::blocks)))
        .service(
            resource("/me/blocks/users/{username}")
                .route(put().to(reader::block_user))
                .route(delete().to(reader::unblock_user)),
        )
        .service(
            resource("/me/blocks/communities/{name}")
                .route(put().to(reader::block_community))
                .route(delete().to(reader::unblock_community)),
        )
        .service(resource("/users/{username}").route(get().to(users::get_user)))
        .service(resource("/users/{username}/posts").route(get().to(users::posts)))
        .service(resource("/users/{username}/comments").route(get().to(users::comments)))
        .service(resource("/communities").route(post().to(communities::create)).route(get().to(communities::list)))
        .service(resource("/communities/{name}").route(get().to(communities::get)).route(patch().to(communities::edit)))
        .service(
            resource("/communities/{name}/membership")
                .route(put().to(communities::join))
                .route(delete().to(communities::leave)),
        )
        .service(
            resource("/communities/{name}/moderators/{username}")
                .route(put().to(communities::add_moderator))
                .route(delete().to(communities::remove_moderator)),
        )
        .service(resource("/communities/{name}/bans").route(post().to(communities::ban)))
        .service(resource("/communities/{name}/posts").route(post().to(posts::create)))
        .service(resource("/uploads").route(post().to(media::upload)))
        .service(resource("/uploads/{id}").route(get().to(media::get)).route(delete().to(media::delete)))
        .service(resource("/posts").route(get().to(posts::list)))
        .service(
            resource("/posts/{id}")
                .route(get().to(posts::get))
                .route(patch().to(posts::edit))
                .route(delete().to(posts::delete)),
        )
        .service(resource("/posts/{id}/vote").route(put().to(posts::vote)))
        .service(
            resource("/posts/{id}/save").route(put().to(reader::save_post)).route(delete().to(reader::unsave_post)),
        )
        .service(
            resource("/posts/{id}/hide").route(put().to(reader::hide_post)).route(delete().to(reader::unhide_post)),
        )
        .service(resource("/posts/{id}/summary").route(get().to(posts::summary)))
        .service(resource("/posts/{id}/comments").route(post().to(comments::create)).route(get().to(comments::tree)))
        .service(
            resource("/comments/{id}")
                .route(get().to(comments::subtree))
                .route(patch().to(comments::edit))
                .route(delete().to(comments::delete)),
        )
        .service(resource("/comments/{id}/vote").route(put().to(comments::vote)))
        .service(
            resource("/comments/{id}/save")
                .route(put().to(reader::save_comment))
                .route(delete().to(reader::unsave_comment)),
        )
        .service(resource("/messages").route(post().to(messages::send)).route(get().to(messages::conversation)))
        .service(resource("/messages/{id}/report").route(post().to(messages::report)))
        .service(resource("/posts/{id}/report").route(post().to(moderation::report_post)))
        .service(resource("/comments/{id}/report").route(post().to(moderation::report_comment)))
        .service(resource("/mod/posts/{id}/{action}").route(post().to(moderation::post_action)))
        .service(resource("/mod/comments/{id}/{action}").route(post().to(moderation::comment_action)))
        .service(resource("/mod/reports").route(get().to(moderation::reports)))
        .service(resource("/mod/reports/{id}/resolve").route(post().to(moderation::resolve_report)))
        .service(resource("/modlog").route(get().to(moderation::modlog)))
        .service(resource("/search").route(get().to(posts::search)))
        .service(resource("/openapi.json").route(get().to(openapi::document)));
    cfg.service(scope);
}

/// Registers the admin listener's routes: `/metrics` and the health checks.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(ops::metrics)))
        .service(web::resource("/health/live").route(web::get().to(ops::live)))
        .service(web::resource("/health/ready").route(web::get().to(ops::ready)));
}
