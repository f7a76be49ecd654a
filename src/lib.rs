//! Agora: a self-hosted community platform in one observable daemon.
//!
//! Layers: `http` → `service` → `db`, with `domain` types shared by all; `app` wires them,
//! `lifecycle` runs them. See ARCHITECTURE.md for the codemap and the invariants.

pub mod app;
pub mod backup;
pub mod cli;
pub mod config;
pub mod db;
pub mod doctor;
pub mod domain;
pub mod edge;
pub mod email;
pub mod error;
pub mod http;
pub mod jobs;
pub mod lifecycle;
pub mod markdown;
pub mod media;
pub mod metrics;
pub mod queue;
pub mod security;
pub mod service;
pub mod summaries;
pub mod telemetry;
pub mod tls;
pub mod web;

/// The git revision this binary was built from (`unknown` outside a git checkout).
pub const GIT_REVISION: &str = env!("AGORA_GIT_REVISION");

/// `agora --version --verbose` text: version and revision.
pub const LONG_VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (revision ", env!("AGORA_GIT_REVISION"), ")");
