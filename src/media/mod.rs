//! Image files: turning an upload into stored WebP ([`process`]) and keeping it, locally or
//! in an S3-compatible store ([`store`]). No database and no HTTP here: `service::media`
//! holds the rules (who may upload, dedup, deletion) and calls these.

pub mod process;
pub mod store;
