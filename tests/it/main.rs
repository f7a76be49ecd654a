//! Integration tests: the real daemon against a real PostgreSQL. One binary, so the crate
//! links once; see `harness` for how databases and apps are set up.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod accounts;
mod admin_cli;
mod backup;
mod bad_input;
mod browser;
mod caching;
mod comments;
mod communities;
mod config_cli;
mod cors;
mod dashboards;
mod disk_full;
mod doctor;
mod dr_enable;
mod email;
mod feeds;
mod harness;
mod health;
mod home_feed;
mod idempotency;
mod inbox;
mod layering;
mod lifecycle;
mod media;
mod media_pages;
mod media_s3;
mod metrics;
mod migrations;
mod moderation;
mod openapi;
mod pages;
mod pitr;
mod posts;
mod private_cluster;
mod profiles;
mod queue;
mod rate_limits;
mod reader;
mod reader_pages;
mod replicas;
mod replication;
mod scale_out;
mod seed;
mod summaries;
mod systemd_units;
mod tls;
mod tracing_export;
