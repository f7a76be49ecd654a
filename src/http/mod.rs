//! The HTTP surface: routes, extractor configuration, middleware and error bodies.
//! Handlers stay thin; the rules live in `service`.

pub mod api;
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
        .service(
            web::scope("/api/v1")
                .service(web::resource("/posts/{id}").route(web::get().to(api::get_post)))
                .service(web::resource("/users/{username}").route(web::get().to(api::get_user))),
        );
    if serve_metrics {
        cfg.service(web::resource("/metrics").route(web::get().to(ops::metrics)));
    }
}

/// Registers the admin listener's routes: `/metrics` and the health checks.
pub fn configure_admin(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/metrics").route(web::get().to(ops::metrics)))
        .service(web::resource("/health/live").route(web::get().to(ops::live)))
        .service(web::resource("/health/ready").route(web::get().to(ops::ready)));
}
