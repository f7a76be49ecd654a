//! `/api/v1/uploads` and `/media/{key}`: thin handlers over `service::media`. An upload is
//! streamed from the multipart body straight to disk.

use actix_multipart::Multipart;
use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::domain::media::MediaKey;
use crate::edge::HttpState;
use crate::edge::problem::Problem;
use crate::error::AppError;
use crate::http::auth::CurrentUser;
use crate::service::media::{self, Upload};

/// Body of `POST /api/v1/uploads` (documentation only: the handler streams the parts).
#[derive(utoipa::ToSchema, serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
pub struct UploadForm {
    /// The image: PNG, JPEG, GIF or WebP (decided by its content), at most
    /// `media.max_upload_bytes`.
    #[schema(value_type = String, format = Binary, min_length = 1)]
    file: Vec<u8>,
}

/// `POST /api/v1/uploads`
#[utoipa::path(
    post,
    path = "/api/v1/uploads",
    tag = "media",
    request_body(content = UploadForm, content_type = "multipart/form-data"),
    responses(
        (status = 202, description = "accepted: processing on the job queue; poll GET /api/v1/uploads/{id}", body = Upload),
        (status = 400, description = "bad_request: the multipart body does not parse", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "payload_too_large: the file is larger than media.max_upload_bytes", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "unsupported_media_type: not PNG, JPEG, GIF or WebP by its content, or not a multipart body", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "image_too_large: more pixels or a longer side than allowed; validation_failed: no `file` part, or an unreadable header", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn upload(
    state: web::Data<HttpState>,
    user: CurrentUser,
    mut multipart: Multipart,
) -> Result<HttpResponse, AppError> {
    let form = crate::edge::multipart::read(&state, &mut multipart).await?;
    if let Some(name) = form.fields.keys().next() {
        return Err(AppError::invalid_field(name, "is not a part of an upload: send only `file`"));
    }
    let received =
        form.file.ok_or_else(|| AppError::invalid_field("file", "is required: a multipart part named `file`"))?;
    let upload = media::accept(&state, user.0.user_id, received).await?;
    Ok(HttpResponse::Accepted().insert_header(("location", format!("/api/v1/uploads/{}", upload.id))).json(upload))
}

/// `GET /api/v1/uploads/{id}`
#[utoipa::path(
    get,
    path = "/api/v1/uploads/{id}",
    tag = "media",
    params(("id" = i64, Path)),
    responses(
        (status = 200, description = "the upload: processing, ready (with its size and URLs) or failed (with the reason)", body = Upload),
        (status = 404, description = "not_found: no such upload", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn get(state: web::Data<HttpState>, id: web::Path<i64>) -> Result<HttpResponse, AppError> {
    Ok(HttpResponse::Ok().json(media::get(&state, id.into_inner()).await?))
}

/// `DELETE /api/v1/uploads/{id}`
#[utoipa::path(
    delete,
    path = "/api/v1/uploads/{id}",
    tag = "media",
    params(("id" = i64, Path)),
    responses(
        (status = 204, description = "deleted: posts and avatars that used it show none; its files go unless another upload shares them"),
        (status = 403, description = "forbidden: only the uploader or an admin", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "not_found: no such upload", body = Problem, content_type = "application/problem+json")
    ),
    security(("bearer" = []))
)]
pub async fn delete(
    state: web::Data<HttpState>,
    user: CurrentUser,
    id: web::Path<i64>,
) -> Result<HttpResponse, AppError> {
    media::delete(&state, user.0.user_id, id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// `GET /media/{key}`: a stored image or thumbnail. The name is the content's hash, so the
/// answer never changes: cached for a year, and its ETag is the name.
#[utoipa::path(
    get,
    path = "/media/{key}",
    tag = "media",
    params(("key" = String, Path, description = "a name from an upload's `urls`: 64 hex digits, an optional -w320/-w640/-w1280, .webp")),
    responses(
        (status = 200, description = "the image", content_type = "image/webp", body = Vec<u8>),
        (status = 304, description = "not modified (If-None-Match named it)"),
        (status = 404, description = "not_found: no such image", body = Problem, content_type = "application/problem+json")
    )
)]
pub async fn file(
    req: HttpRequest,
    state: web::Data<HttpState>,
    key: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let key = MediaKey::parse(&key).ok_or_else(|| AppError::not_found("image"))?;
    let etag = format!("\"{}\"", key.name());
    let cache = (header::CACHE_CONTROL, "public, max-age=31536000, immutable");
    let matches = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == etag || tag.trim() == "*"));
    let bytes = media::file(&state, &key).await?.ok_or_else(|| AppError::not_found("image"))?;
    if matches {
        return Ok(HttpResponse::NotModified().insert_header(cache).insert_header((header::ETAG, etag)).finish());
    }
    state.metrics.media_served_bytes.inc_by(bytes.len() as u64);
    Ok(HttpResponse::Ok()
        .content_type("image/webp")
        .insert_header(cache)
        .insert_header((header::ETAG, etag))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .body(bytes))
}
