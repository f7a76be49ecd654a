//! The `agora` binary: see `agora --help`.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    pin_malloc_mmap_threshold();
    // reqwest (used by the OTLP exporter) is built without a default TLS provider; install
    // ring before anything can build a TLS configuration.
    let _ = rustls::crypto::ring::default_provider().install_default();
    agora::cli::run(agora::cli::Cli::parse())
}

/// glibc raises its mmap threshold every time a large block is freed, so after the first
/// password hash (19 MiB of Argon2 memory) or large response, such blocks come from malloc
/// arenas that keep the memory for good: 20 sign-ins left 237 MB resident. A fixed threshold
/// (glibc's default, 128 KiB) keeps large blocks mmapped and returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn pin_malloc_mmap_threshold() {
    // SAFETY: mallopt only changes allocator tunables; it runs first in main, before any other
    // thread exists, and takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 4 * 1024 * 1024);
        // Pinning the mmap threshold also pins the trim threshold at 128 KiB: every large
        // page buffer freed at the top of a heap was handed back and faulted in again by the
        // next page (a tenth of a signed-in thread page's CPU). Keep up to 4 MiB per heap.
        libc::mallopt(libc::M_TRIM_THRESHOLD, 4 * 1024 * 1024);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn pin_malloc_mmap_threshold() {}
