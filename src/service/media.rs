//! Image uploads: receiving a file (streamed to disk, checked by content and declared size
//! before anything is decoded), processing it on the job queue, storing the result once per
//! distinct image, serving it, and deleting it (by its uploader, an admin, or as an orphan).
//!
//! Files are named by the hash of the processed image, so uploads of one picture share
//! them. Storing a hash's files and marking an upload of it ready, and deleting the last
//! upload of a hash with its files, each happen under that hash's lock
//! (`db::uploads::lock_hash`), so neither can undo the other.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

use crate::db::uploads::{self as db_uploads, Ready, UploadRow};
use crate::domain::UserId;
use crate::domain::media::{ImageUrls, MediaKey, SourceFormat, check_declared_size};
use crate::error::{AppError, ErrorCode};
use crate::jobs::{ImageJob, Payload};
use crate::media::process::{self, ProcessError, Settings};
use crate::media::store::StoreError;
use crate::service::Context;
use crate::service::cache::Change;
use crate::service::cache_sync;

/// An upload as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Upload {
    /// Id (what `image_id` and `avatar_id` name).
    pub id: i64,
    /// `processing`, `ready` or `failed`.
    pub status: String,
    /// Width of the stored image, once ready.
    pub width: Option<i32>,
    /// Height of the stored image, once ready.
    pub height: Option<i32>,
    /// Whether the stored image is animated.
    pub animated: bool,
    /// Where the image and its thumbnails are served, once ready (paths on this server).
    pub urls: Option<ImageUrls>,
    /// Why processing failed.
    pub failure_reason: Option<String>,
}

impl From<UploadRow> for Upload {
    fn from(row: UploadRow) -> Self {
        let urls = match (&row.content_hash, row.status.as_str()) {
            (Some(hash), "ready") => Some(ImageUrls::of(hash, &stored_widths(&row.thumbnail_widths))),
            _ => None,
        };
        Self {
            id: row.id,
            status: row.status,
            width: row.width,
            height: row.height,
            animated: row.animated,
            urls,
            failure_reason: row.failure_reason,
        }
    }
}

fn stored_widths(widths: &[i32]) -> Vec<u32> {
    widths.iter().filter_map(|w| u32::try_from(*w).ok()).collect()
}

fn store_error(err: StoreError) -> AppError {
    match err {
        StoreError::Full(detail) => AppError::new(ErrorCode::InsufficientStorage, detail),
        StoreError::Unavailable(detail) | StoreError::Config(detail) => {
            AppError::new(ErrorCode::ServiceUnavailable, detail)
        }
    }
}

fn io_refusal(err: std::io::Error) -> AppError {
    if err.raw_os_error() == Some(libc::ENOSPC) {
        AppError::new(ErrorCode::InsufficientStorage, "no space left to receive the upload")
    } else {
        AppError::internal(err)
    }
}

/// Where uploads wait for their job: on this daemon's disk, whatever the store (the job runs
/// on the daemon that queued it).
fn incoming_dir(ctx: &Context) -> PathBuf {
    ctx.state_dir.join("media-incoming")
}

fn settings(ctx: &Context) -> Settings {
    let media = &ctx.config.media;
    Settings {
        max_pixels: media.max_pixels,
        max_dimension: media.max_dimension,
        quality: media.webp_quality,
        max_animation_frames: media.max_animation_frames,
        max_animation_bytes: media.max_animation_bytes,
    }
}

/// A file being received: written to a temporary file as it arrives, never held whole in
/// memory; over `media.max_upload_bytes` it is refused with 413 and deleted.
pub struct Receiving {
    file: tokio::fs::File,
    path: tempfile::TempPath,
    head: Vec<u8>,
    written: u64,
    max: u64,
    uploads: prometheus::IntCounterVec,
}

impl Receiving {
    /// Starts receiving a file.
    pub async fn start(ctx: &Context) -> Result<Self, AppError> {
        let dir = incoming_dir(ctx);
        tokio::fs::create_dir_all(&dir).await.map_err(io_refusal)?;
        let (file, path) = tempfile::NamedTempFile::new_in(&dir).map_err(io_refusal)?.into_parts();
        Ok(Self {
            file: tokio::fs::File::from_std(file),
            path,
            head: Vec::new(),
            written: 0,
            max: ctx.config.media.max_upload_bytes,
            uploads: ctx.metrics.media_uploads.clone(),
        })
    }

    /// Appends a chunk of the file.
    pub async fn write(&mut self, chunk: &[u8]) -> Result<(), AppError> {
        self.written += chunk.len() as u64;
        if self.written > self.max {
            self.uploads.with_label_values(&["refused_size"]).inc();
            return Err(AppError::new(
                ErrorCode::PayloadTooLarge,
                format!("the file is larger than {} bytes (media.max_upload_bytes)", self.max),
            ));
        }
        if self.head.len() < 16 {
            let wanted = (16 - self.head.len()).min(chunk.len());
            self.head.extend_from_slice(&chunk[..wanted]);
        }
        self.file.write_all(chunk).await.map_err(io_refusal)
    }

    /// Bytes received so far.
    pub fn received(&self) -> u64 {
        self.written
    }
}

/// Accepts a received file from `uploader`: its type from its content (415 otherwise), its
/// declared size from its header (422 `image_too_large`), then records it and queues its
/// processing. The answer is the upload, `processing`.
#[tracing::instrument(name = "service.media.accept", skip_all, fields(bytes = received.written))]
pub async fn accept(ctx: &Context, uploader: UserId, mut received: Receiving) -> Result<Upload, AppError> {
    let count = |outcome: &str| ctx.metrics.media_uploads.with_label_values(&[outcome]).inc();
    received.file.flush().await.map_err(io_refusal)?;
    received.file.sync_all().await.map_err(io_refusal)?;
    if received.written == 0 {
        count("refused_type");
        return Err(AppError::new(ErrorCode::UnsupportedMediaType, "the file is empty, so it is no image"));
    }
    let Some(format) = SourceFormat::sniff(&received.head) else {
        count("refused_type");
        return Err(AppError::new(
            ErrorCode::UnsupportedMediaType,
            "only PNG, JPEG, GIF and WebP images are accepted (decided by the file's content)",
        ));
    };
    let path = received.path.to_path_buf();
    let declared =
        tokio::task::spawn_blocking(move || process::declared_size(&path, format)).await.map_err(AppError::internal)?;
    let (width, height) = match declared {
        Ok(size) => size,
        Err(err) => {
            count("refused_type");
            return Err(AppError::invalid_field("file", format!("is not a readable {} image: {err}", format.as_str())));
        }
    };
    let media = &ctx.config.media;
    if let Err(refusal) = check_declared_size(width, height, media.max_pixels, media.max_dimension) {
        count("refused_dimensions");
        return Err(AppError::new(ErrorCode::ImageTooLarge, refusal.to_string()));
    }
    let bytes = i64::try_from(received.written).unwrap_or(i64::MAX);
    let mut conn = ctx.db.conn().await?;
    let id = ctx
        .db
        .observe("uploads.insert", &mut conn, async |conn| {
            db_uploads::insert(conn, uploader, format.as_str(), bytes).await
        })
        .await?;
    let kept = incoming_dir(ctx).join(id.to_string());
    if let Err(err) = received.path.persist(&kept) {
        let _ = ctx.db.observe("uploads.delete", &mut conn, async |conn| db_uploads::delete(conn, id).await).await;
        return Err(io_refusal(err.error));
    }
    let job = Payload::Image(ImageJob { upload_id: id }).into_job().map_err(AppError::internal)?;
    if let Err(err) = ctx.jobs.enqueue(job).await {
        let _ = std::fs::remove_file(&kept);
        let _ = ctx.db.observe("uploads.delete", &mut conn, async |conn| db_uploads::delete(conn, id).await).await;
        return Err(err.into());
    }
    count("accepted");
    tracing::info!(upload_id = id, format = format.as_str(), width, height, bytes, "upload accepted");
    // As recorded: the job may already have finished, but this answer is the 202 of the upload.
    Ok(Upload {
        id,
        status: "processing".into(),
        width: None,
        height: None,
        animated: false,
        urls: None,
        failure_reason: None,
    })
}

async fn find_row(ctx: &Context, id: i64) -> Result<UploadRow, AppError> {
    let mut conn = ctx.db.conn().await?;
    ctx.db
        .observe("uploads.find", &mut conn, async |conn| db_uploads::find(conn, id).await)
        .await?
        .ok_or_else(|| AppError::not_found("upload"))
}

/// One upload; anyone may look (the ids are not secret, the images are public once used).
pub async fn get(ctx: &Context, id: i64) -> Result<Upload, AppError> {
    find_row(ctx, id).await.map(Upload::from)
}

/// Waits until an upload is processed (for the submit form, which works without JavaScript
/// and so cannot poll), up to `within`; the upload as it is then.
pub async fn wait_processed(ctx: &Context, id: i64, within: Duration) -> Result<Upload, AppError> {
    let deadline = Instant::now() + within;
    loop {
        let upload = get(ctx, id).await?;
        if upload.status != "processing" || Instant::now() >= deadline {
            return Ok(upload);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The job: processes an upload and stores the result, or marks it failed with the reason.
/// Idempotent: an upload already processed is left as it is.
#[tracing::instrument(name = "job.image", skip_all, fields(upload_id = job.upload_id))]
pub async fn run(ctx: &Context, job: ImageJob) -> Result<(), crate::queue::worker::JobError> {
    use crate::queue::worker::JobError;
    let retry = |err: AppError| JobError::Retry(err.to_string());
    let id = job.upload_id;
    let incoming = incoming_dir(ctx).join(id.to_string());
    let row = match find_row(ctx, id).await {
        Ok(row) => row,
        Err(err) if err.code == ErrorCode::NotFound => {
            let _ = tokio::fs::remove_file(&incoming).await;
            return Ok(());
        }
        Err(err) => return Err(retry(err)),
    };
    if row.status != "processing" {
        let _ = tokio::fs::remove_file(&incoming).await;
        return Ok(());
    }
    let Some(format) = SourceFormat::from_name(&row.source_format) else {
        return fail(ctx, id, &incoming, "unknown source format", Instant::now()).await.map_err(retry);
    };
    if !incoming.exists() {
        return fail(ctx, id, &incoming, "the uploaded file was lost before it was processed", Instant::now())
            .await
            .map_err(retry);
    }
    let started = Instant::now();
    let settings = settings(ctx);
    let path = incoming.clone();
    let processed = tokio::task::spawn_blocking(move || process::process(&path, format, &settings))
        .await
        .map_err(|err| JobError::Retry(err.to_string()))?;
    let processed = match processed {
        Ok(processed) => processed,
        Err(ProcessError::Io(detail)) => return Err(JobError::Retry(detail)),
        Err(err) => return fail(ctx, id, &incoming, &err.to_string(), started).await.map_err(retry),
    };
    store_ready(ctx, id, processed).await.map_err(retry)?;
    let _ = tokio::fs::remove_file(&incoming).await;
    ctx.metrics.media_uploads.with_label_values(&["ready"]).inc();
    ctx.metrics.media_processing_duration.with_label_values(&["ready"]).observe(started.elapsed().as_secs_f64());
    tracing::info!(upload_id = id, seconds = started.elapsed().as_secs_f64(), "upload processed");
    Ok(())
}

async fn fail(
    ctx: &Context,
    id: i64,
    incoming: &std::path::Path,
    reason: &str,
    started: Instant,
) -> Result<(), AppError> {
    let mut conn = ctx.db.conn().await?;
    ctx.db
        .observe("uploads.mark_failed", &mut conn, async |conn| db_uploads::mark_failed(conn, id, reason).await)
        .await?;
    // The uploader's bytes are never kept, failed or not.
    let _ = tokio::fs::remove_file(incoming).await;
    ctx.metrics.media_uploads.with_label_values(&["failed"]).inc();
    ctx.metrics.media_processing_duration.with_label_values(&["failed"]).observe(started.elapsed().as_secs_f64());
    tracing::warn!(upload_id = id, reason, "upload failed to process");
    Ok(())
}

/// Stores the processed files under their hash and marks the upload ready, under the
/// hash's lock.
async fn store_ready(ctx: &Context, id: i64, processed: process::Processed) -> Result<(), AppError> {
    let hash: String = Sha256::digest(&processed.image).iter().map(|b| format!("{b:02x}")).collect();
    let widths: Vec<i32> = processed.thumbnails.iter().filter_map(|(width, _)| i32::try_from(*width).ok()).collect();
    let mut files = vec![(MediaKey::original(&hash), Bytes::from(processed.image))];
    for (width, bytes) in processed.thumbnails {
        files.push((MediaKey::thumbnail(&hash, width), Bytes::from(bytes)));
    }
    let stored_bytes = files.iter().map(|(_, b)| i64::try_from(b.len()).unwrap_or(i64::MAX)).sum();
    let width = i32::try_from(processed.width).map_err(AppError::internal)?;
    let height = i32::try_from(processed.height).map_err(AppError::internal)?;
    let store = ctx.media.clone();
    let mut conn = ctx.db.conn().await?;
    ctx.db
        .transaction::<_, AppError>("uploads.store_ready", &mut conn, async move |conn| {
            db_uploads::lock_hash(conn, &hash).await?;
            for (key, bytes) in files {
                store.put(&key, bytes).await.map_err(store_error)?;
            }
            let ready = Ready {
                width,
                height,
                animated: processed.animated,
                content_hash: &hash,
                stored_bytes,
                thumbnail_widths: &widths,
            };
            db_uploads::mark_ready(conn, id, &ready).await?;
            Ok(())
        })
        .await
}

/// Deletes an upload (its uploader or an admin): posts and avatars that used it show none,
/// and its files go unless another upload shares them.
#[tracing::instrument(name = "service.media.delete", skip_all, fields(upload_id = id))]
pub async fn delete(ctx: &Context, caller: UserId, id: i64) -> Result<(), AppError> {
    let row = find_row(ctx, id).await?;
    let mut conn = ctx.db.conn().await?;
    if row.uploader_id != caller.0 {
        let is_admin = ctx
            .db
            .observe("communities.is_admin", &mut conn, async |conn| {
                crate::db::communities::is_admin(conn, caller).await
            })
            .await?;
        if !is_admin {
            return Err(AppError::new(ErrorCode::Forbidden, "only the uploader or an admin can delete an upload"));
        }
    }
    let (posts, avatars) =
        ctx.db.observe("uploads.users_of", &mut conn, async |conn| db_uploads::users_of(conn, id).await).await?;
    remove(ctx, id).await?;
    let mut changes: Vec<Change> = posts.into_iter().map(Change::Post).collect();
    if avatars > 0 {
        changes.push(Change::Profiles);
    }
    cache_sync::committed(ctx, &mut conn, caller, &changes).await;
    tracing::info!(upload_id = id, by = caller.0, "upload deleted");
    Ok(())
}

/// Deletes an upload row and, when it was the last of its hash, the files.
async fn remove(ctx: &Context, id: i64) -> Result<bool, AppError> {
    let store = ctx.media.clone();
    let mut conn = ctx.db.conn().await?;
    let removed = ctx
        .db
        .transaction::<_, AppError>("uploads.delete", &mut conn, async move |conn| {
            let Some(row) = db_uploads::find(conn, id).await? else { return Ok(false) };
            if let Some(hash) = &row.content_hash {
                db_uploads::lock_hash(conn, hash).await?;
            }
            db_uploads::delete(conn, id).await?;
            if let Some(hash) = &row.content_hash
                && db_uploads::others_with_hash(conn, hash, id).await? == 0
            {
                store.delete(&MediaKey::original(hash)).await.map_err(store_error)?;
                for width in stored_widths(&row.thumbnail_widths) {
                    store.delete(&MediaKey::thumbnail(hash, width)).await.map_err(store_error)?;
                }
            }
            Ok(true)
        })
        .await?;
    let _ = tokio::fs::remove_file(incoming_dir(ctx).join(id.to_string())).await;
    Ok(removed)
}

/// A ready upload of `owner`'s, for a post's `image_id` or a profile's `avatar_id`: 403 when
/// it is not one of theirs (whether it exists is not told), 422 on `field` while it is not
/// ready.
pub async fn ready_of(ctx: &Context, owner: UserId, id: i64, field: &str) -> Result<UploadRow, AppError> {
    let not_theirs = || AppError::new(ErrorCode::Forbidden, format!("{field} does not name one of your uploads"));
    let row = match find_row(ctx, id).await {
        Ok(row) => row,
        Err(err) if err.code == ErrorCode::NotFound => return Err(not_theirs()),
        Err(err) => return Err(err),
    };
    if row.uploader_id != owner.0 {
        return Err(not_theirs());
    }
    match row.status.as_str() {
        "ready" => Ok(row),
        "processing" => Err(AppError::invalid_field(field, "is still processing; try again in a moment")),
        _ => Err(AppError::invalid_field(field, "failed to process and cannot be used")),
    }
}

/// A stored file, for `/media/{key}`.
pub async fn file(ctx: &Context, key: &MediaKey) -> Result<Option<Bytes>, AppError> {
    ctx.media.get(key).await.map_err(store_error)
}

/// Deletes uploads attached to nothing for `media.orphan_grace_hours`, every 10 minutes.
pub async fn sweep_orphans_periodically(ctx: std::sync::Arc<Context>) {
    let period = Duration::from_secs(600);
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + Duration::from_secs(30), period);
    loop {
        every.tick().await;
        match sweep_orphans(&ctx).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "deleted orphaned uploads"),
            Err(err) => tracing::warn!(error = %err, "deleting orphaned uploads failed"),
        }
    }
}

/// One sweep: deletes up to 500 orphaned uploads; how many went.
pub async fn sweep_orphans(ctx: &Context) -> Result<usize, AppError> {
    let grace = chrono::Duration::hours(i64::try_from(ctx.config.media.orphan_grace_hours).unwrap_or(24));
    let before = chrono::Utc::now() - grace;
    let mut conn = ctx.db.conn().await?;
    let ids =
        ctx.db.observe("uploads.orphans", &mut conn, async |conn| db_uploads::orphans(conn, before, 500).await).await?;
    drop(conn);
    let mut deleted = 0;
    for id in ids {
        if remove(ctx, id).await? {
            deleted += 1;
        }
    }
    Ok(deleted)
}

/// How often the storage gauges are counted again: the count scans the ready uploads (28 ms
/// for 40,000 here), and storage changes slowly.
const COUNT_EVERY: Duration = Duration::from_secs(60);

/// Sets the storage gauges at scrape time, counting again at most every [`COUNT_EVERY`]
/// (bounded by the health timeout).
pub async fn export_storage_gauges(ctx: &Context) {
    {
        let Ok(mut counted) = ctx.media_counted_at.lock() else { return };
        if counted.is_some_and(|at| at.elapsed() < COUNT_EVERY) {
            return;
        }
        *counted = Some(Instant::now());
    }
    let totals = async {
        let mut conn = ctx.db.conn().await?;
        ctx.db.observe("uploads.storage_totals", &mut conn, async |conn| db_uploads::storage_totals(conn).await).await
    };
    let timeout = Duration::from_millis(ctx.config.database.health_timeout_ms);
    if let Ok(Ok((objects, bytes))) = tokio::time::timeout(timeout, totals).await {
        ctx.metrics.media_objects.set(objects);
        ctx.metrics.media_stored_bytes.set(bytes);
    }
}
