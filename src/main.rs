//! The `agora` binary: see `agora --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // reqwest (used by the OTLP exporter) is built without a default TLS provider; install
    // ring before anything can build a TLS configuration.
    let _ = rustls::crypto::ring::default_provider().install_default();
    agora::cli::run(agora::cli::Cli::parse())
}
