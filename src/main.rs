//! The `hawkeye` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    limit_malloc_arenas();
    let cli = hawkeye::cli::Cli::parse();
    hawkeye::cli::init_tracing(cli.verbose);
    match hawkeye::cli::execute(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// glibc gives threads up to eight malloc arenas per core, and a camera's pipelines start
/// threads afresh on every reconnect (or file loop): freed memory stays in the arena of a thread
/// that is gone, and a box of many cameras grows by megabytes per camera that way. Two arenas
/// (measured: 8 quiet dual-stream cameras settle at 350 MB instead of 403; see README, Benchmarks)
/// unless `MALLOC_ARENA_MAX` says otherwise. Called before any thread starts.
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: mallopt only sets an allocator parameter; no other thread exists yet
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
