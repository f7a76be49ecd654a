//! The HTTP surface: routes, extractor configuration, middleware and error bodies.
//! Handlers stay thin; the rules live in `service`.

pub mod accounts;
pub mod api;
pub mod auth;
pub mod middleware;
pub mod ops;
pub mod problem;

use actix_web::web;

/// Registers the public routes and the extractor settings every handler shares.
pub fn configure_public(cfg: &mut web::ServiceConfig, max_body_bytes: usize, serve_metrics: bool) {
    cfg.app_data(web::JsonConfig::default().limit(max_body_bytes).error_handler(problem::json_error))
        .app_data(web::PayloadConfig::default().limit(max_body_bytes))
        .app_data(web::PathConfig::default().error_handler(problem::path_error))
        .app_data(web::QueryConfig::default().error_handler(problem::query_error))
        .service(web::resource("/health/live").route(web::get().to(ops::live)))
        .service(web::resource("/health/ready").route(web::get().to(ops::ready)))
        .service(api_v1());
    if serve_metrics {
        cfg.service(web::resource("/metrics").route(web::get().to(ops::metrics)));
    }
}

/// The JSON API: the route table of `/api/v1`.
fn api_v1() -> actix_web::Scope {
    use web::{get, patch, post, resource};
    web::scope("/api/v1")
        .service(resource("/auth/register").route(post().to(accounts::register)))
        .service(resource("/auth/login").route(post().to(accounts::login)))
        .service(resource("/auth/refresh").route(post().to(accounts::refresh)))
        .service(resource("/auth/logout").route(post().to(accounts::logout)))
        .service(resource("/auth/password-reset").route(post().to(accounts::request_password_reset)))
        .service(resource("/auth/password-reset/confirm").route(post().to(accounts::confirm_password_reset)))
        .service(resource("/me").route(get().to(accounts::me)).route(patch().to(accounts::update_me)))
        .service(resource("/users/{username}").route(get().to(api::get_user)))
        .service(resource("/posts/{id}").route(get().to(api::get_post)))
}

/// Registers the admin listener's routes: `/metrics` and the health checks.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(ops::metrics)))
        .service(web::resource("/health/live").route(web::get().to(ops::live)))
        .service(web::resource("/health/ready").route(web::get().to(ops::ready)));
}
