//! Where stored images live, behind one interface: files under `<state_dir>/media` (spread
//! over 256 directories by the first two hex digits of their name) or an S3-compatible
//! bucket that several daemons share. Names are [`MediaKey`] names only, so nothing can
//! reach outside the store.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::ObjectStoreExt;

use crate::config::{MediaConfig, MediaStorage};
use crate::domain::media::MediaKey;

/// Why the store could not do something.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The disk (or the store) is full.
    #[error("media storage is full: {0}")]
    Full(String),
    /// The store cannot be reached.
    #[error("media storage is unavailable: {0}")]
    Unavailable(String),
    /// The configuration does not describe a usable store.
    #[error("media storage is misconfigured: {0}")]
    Config(String),
}

fn io_error(context: &str, path: &Path, err: std::io::Error) -> StoreError {
    if err.raw_os_error() == Some(libc::ENOSPC) {
        StoreError::Full(format!("{context} {}: {err}", path.display()))
    } else {
        StoreError::Unavailable(format!("{context} {}: {err}", path.display()))
    }
}

/// The media store.
#[derive(Debug, Clone)]
pub enum Store {
    /// Files under this directory.
    Local(PathBuf),
    /// An S3-compatible bucket.
    S3 {
        /// The client.
        client: Arc<object_store::aws::AmazonS3>,
        /// `bucket at endpoint`, for logs and `agora doctor`.
        describe: String,
    },
}

impl Store {
    /// The store `[media]` configures; local files go under `state_dir/media`.
    pub fn from_config(config: &MediaConfig, state_dir: &Path) -> Result<Self, StoreError> {
        match config.storage {
            MediaStorage::Local => Ok(Self::Local(state_dir.join("media"))),
            MediaStorage::S3 => {
                let read = |what: &str, secret: std::io::Result<crate::config::Secret>| {
                    secret.map_err(|err| StoreError::Config(format!("reading {what}: {err}")))
                };
                let key_id = read("media.s3_access_key_id_file", config.access_key_id())?;
                let secret = read("media.s3_secret_access_key_file", config.secret_access_key())?;
                let client = object_store::aws::AmazonS3Builder::new()
                    .with_endpoint(&config.s3_endpoint)
                    .with_bucket_name(&config.s3_bucket)
                    .with_region(&config.s3_region)
                    .with_access_key_id(key_id.expose())
                    .with_secret_access_key(secret.expose())
                    .with_virtual_hosted_style_request(!config.s3_path_style)
                    .with_allow_http(config.s3_endpoint.starts_with("http://"))
                    .build()
                    .map_err(|err| StoreError::Config(err.to_string()))?;
                let describe = format!("bucket {} at {}", config.s3_bucket, config.s3_endpoint);
                Ok(Self::S3 { client: Arc::new(client), describe })
            }
        }
    }

    /// What the store is, for operators.
    pub fn describe(&self) -> String {
        match self {
            Self::Local(dir) => format!("local files in {}", dir.display()),
            Self::S3 { describe, .. } => describe.clone(),
        }
    }

    /// `local` or `s3`, for metric labels.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::S3 { .. } => "s3",
        }
    }

    fn local_path(dir: &Path, key: &MediaKey) -> PathBuf {
        dir.join(&key.hash()[..2]).join(key.name())
    }

    fn object_path(key: &MediaKey) -> object_store::path::Path {
        object_store::path::Path::from(key.name())
    }

    /// Stores `bytes` under `key` (replacing what is there: the name is the content's hash,
    /// so it is the same content). Local files are written aside, synced, then renamed.
    pub async fn put(&self, key: &MediaKey, bytes: Bytes) -> Result<(), StoreError> {
        match self {
            Self::Local(dir) => {
                let path = Self::local_path(dir, key);
                tokio::task::spawn_blocking(move || write_durably(&path, &bytes))
                    .await
                    .map_err(|err| StoreError::Unavailable(err.to_string()))?
            }
            Self::S3 { client, .. } => client
                .put(&Self::object_path(key), bytes.into())
                .await
                .map(drop)
                .map_err(|err| StoreError::Unavailable(err.to_string())),
        }
    }

    /// The bytes under `key`, or `None` when there are none.
    pub async fn get(&self, key: &MediaKey) -> Result<Option<Bytes>, StoreError> {
        match self {
            Self::Local(dir) => {
                let path = Self::local_path(dir, key);
                match tokio::fs::read(&path).await {
                    Ok(bytes) => Ok(Some(Bytes::from(bytes))),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(err) => Err(io_error("reading", &path, err)),
                }
            }
            Self::S3 { client, .. } => match client.get(&Self::object_path(key)).await {
                Ok(found) => found.bytes().await.map(Some).map_err(|err| StoreError::Unavailable(err.to_string())),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(err) => Err(StoreError::Unavailable(err.to_string())),
            },
        }
    }

    /// Deletes what is under `key`; nothing there is fine.
    pub async fn delete(&self, key: &MediaKey) -> Result<(), StoreError> {
        match self {
            Self::Local(dir) => {
                let path = Self::local_path(dir, key);
                match tokio::fs::remove_file(&path).await {
                    Ok(()) => Ok(()),
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(err) => Err(io_error("deleting", &path, err)),
                }
            }
            Self::S3 { client, .. } => match client.delete(&Self::object_path(key)).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                Err(err) => Err(StoreError::Unavailable(err.to_string())),
            },
        }
    }
}

fn write_durably(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|err| io_error("creating", dir, err))?;
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(|err| io_error("writing in", dir, err))?;
    file.write_all(bytes).map_err(|err| io_error("writing", path, err))?;
    file.as_file().sync_all().map_err(|err| io_error("syncing", path, err))?;
    file.persist(path).map_err(|err| io_error("storing", path, err.error))?;
    Ok(())
}
