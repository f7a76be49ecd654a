//! SQL over `uploads`: recording an upload, its processing outcome, the per-hash lock that
//! keeps shared files and their uploads consistent, deletion, orphans and storage totals.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamptz};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::db::schema::uploads;
use crate::domain::UserId;

/// One upload as stored.
#[derive(Debug, Clone, PartialEq, Queryable, Selectable)]
#[diesel(table_name = uploads)]
pub struct UploadRow {
    /// Id.
    pub id: i64,
    /// Who uploaded it.
    pub uploader_id: i64,
    /// `processing`, `ready` or `failed`.
    pub status: String,
    /// The sniffed format of the upload.
    pub source_format: String,
    /// Why processing failed.
    pub failure_reason: Option<String>,
    /// Width once processed.
    pub width: Option<i32>,
    /// Height once processed.
    pub height: Option<i32>,
    /// Whether the stored image is animated.
    pub animated: bool,
    /// SHA-256 of the stored image: the name of its files.
    pub content_hash: Option<String>,
    /// Bytes of every stored file of this upload.
    pub stored_bytes: i64,
    /// Thumbnail widths stored.
    pub thumbnail_widths: Vec<i32>,
    /// When it was uploaded.
    pub created_at: DateTime<Utc>,
}

/// The processing outcome of a ready upload.
#[derive(Debug, Clone)]
pub struct Ready<'a> {
    /// Width.
    pub width: i32,
    /// Height.
    pub height: i32,
    /// Animated.
    pub animated: bool,
    /// SHA-256 of the stored image.
    pub content_hash: &'a str,
    /// Bytes stored (image and thumbnails).
    pub stored_bytes: i64,
    /// Thumbnail widths stored.
    pub thumbnail_widths: &'a [i32],
}

/// Records a new upload, `processing`; its id.
pub async fn insert(conn: &mut AsyncPgConnection, uploader: UserId, format: &str, bytes: i64) -> QueryResult<i64> {
    diesel::insert_into(uploads::table)
        .values((
            uploads::uploader_id.eq(uploader.0),
            uploads::source_format.eq(format),
            uploads::source_bytes.eq(bytes),
        ))
        .returning(uploads::id)
        .get_result(conn)
        .await
}

/// The upload with this id.
pub async fn find(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<UploadRow>> {
    uploads::table.find(id).select(UploadRow::as_select()).first(conn).await.optional()
}

/// Serializes, until the transaction ends, everyone who stores or deletes the files of
/// `hash`: the last upload of a hash going while another of it becomes ready must not leave
/// the new one without files.
pub async fn lock_hash(conn: &mut AsyncPgConnection, hash: &str) -> QueryResult<()> {
    diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 7340))")
        .bind::<Text, _>(hash)
        .execute(conn)
        .await
        .map(drop)
}

/// Marks a processing upload ready; false when it is not processing (any more).
pub async fn mark_ready(conn: &mut AsyncPgConnection, id: i64, ready: &Ready<'_>) -> QueryResult<bool> {
    let changed = diesel::update(uploads::table.find(id).filter(uploads::status.eq("processing")))
        .set((
            uploads::status.eq("ready"),
            uploads::width.eq(ready.width),
            uploads::height.eq(ready.height),
            uploads::animated.eq(ready.animated),
            uploads::content_hash.eq(ready.content_hash),
            uploads::stored_bytes.eq(ready.stored_bytes),
            uploads::thumbnail_widths.eq(ready.thumbnail_widths),
            uploads::processed_at.eq(Utc::now()),
        ))
        .execute(conn)
        .await?;
    Ok(changed == 1)
}

/// Marks a processing upload failed with `reason`; false when it is not processing.
pub async fn mark_failed(conn: &mut AsyncPgConnection, id: i64, reason: &str) -> QueryResult<bool> {
    let reason: String = reason.chars().take(500).collect();
    let changed = diesel::update(uploads::table.find(id).filter(uploads::status.eq("processing")))
        .set((uploads::status.eq("failed"), uploads::failure_reason.eq(reason), uploads::processed_at.eq(Utc::now())))
        .execute(conn)
        .await?;
    Ok(changed == 1)
}

/// Deletes an upload (posts and avatars that used it lose it); the row it was.
pub async fn delete(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<Option<UploadRow>> {
    diesel::delete(uploads::table.find(id)).returning(UploadRow::as_returning()).get_result(conn).await.optional()
}

/// Uploads other than `except` whose files are those of `hash`.
pub async fn others_with_hash(conn: &mut AsyncPgConnection, hash: &str, except: i64) -> QueryResult<i64> {
    uploads::table.filter(uploads::content_hash.eq(hash)).filter(uploads::id.ne(except)).count().get_result(conn).await
}

/// Up to `limit` uploads made before `before` that no post and no avatar uses.
pub async fn orphans(conn: &mut AsyncPgConnection, before: DateTime<Utc>, limit: i64) -> QueryResult<Vec<i64>> {
    #[derive(QueryableByName)]
    struct Row {
        #[diesel(sql_type = BigInt)]
        id: i64,
    }
    let rows: Vec<Row> = diesel::sql_query(
        "SELECT u.id FROM uploads u
         WHERE u.created_at < $1
           AND NOT EXISTS (SELECT 1 FROM posts p WHERE p.image_upload_id = u.id)
           AND NOT EXISTS (SELECT 1 FROM users a WHERE a.avatar_upload_id = u.id)
         ORDER BY u.created_at LIMIT $2",
    )
    .bind::<Timestamptz, _>(before)
    .bind::<BigInt, _>(limit)
    .load(conn)
    .await?;
    Ok(rows.into_iter().map(|r| r.id).collect())
}

/// Distinct stored images and the bytes they take (each shared set of files counted once).
pub async fn storage_totals(conn: &mut AsyncPgConnection) -> QueryResult<(i64, i64)> {
    #[derive(QueryableByName)]
    struct Totals {
        #[diesel(sql_type = BigInt)]
        objects: i64,
        #[diesel(sql_type = BigInt)]
        bytes: i64,
    }
    let totals: Totals = diesel::sql_query(
        "SELECT count(*)::int8 AS objects, coalesce(sum(stored_bytes), 0)::int8 AS bytes
         FROM (SELECT DISTINCT ON (content_hash) stored_bytes FROM uploads
               WHERE status = 'ready' ORDER BY content_hash) stored",
    )
    .get_result(conn)
    .await?;
    Ok((totals.objects, totals.bytes))
}

/// The posts that show an upload, and how many users have it as their avatar.
pub async fn users_of(conn: &mut AsyncPgConnection, id: i64) -> QueryResult<(Vec<i64>, i64)> {
    use crate::db::schema::{posts, users};
    let post_ids = posts::table.filter(posts::image_upload_id.eq(id)).select(posts::id).load(conn).await?;
    let avatars = users::table.filter(users::avatar_upload_id.eq(id)).count().get_result(conn).await?;
    Ok((post_ids, avatars))
}

/// The URL path of a user's avatar: the 320 pixel thumbnail (or the image, when narrower) of
/// a ready upload.
pub async fn avatar_url(conn: &mut AsyncPgConnection, upload_id: Option<i64>) -> QueryResult<Option<String>> {
    let Some(id) = upload_id else { return Ok(None) };
    Ok(find(conn, id).await?.and_then(|row| avatar_of(&row)))
}

/// The avatar URL of a ready upload.
pub fn avatar_of(row: &UploadRow) -> Option<String> {
    let hash = row.content_hash.as_deref().filter(|_| row.status == "ready")?;
    let widths: Vec<u32> = row.thumbnail_widths.iter().filter_map(|w| u32::try_from(*w).ok()).collect();
    Some(crate::domain::media::ImageUrls::of(hash, &widths).w320)
}
