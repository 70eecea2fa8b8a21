//! The `hawkeye` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
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
