//! The `crosswalk` binary: parses flags, calls the library, reports one error with context.

mod cli;

/// mimalloc instead of the system allocator: encoding allocates many small strings on worker
/// threads that the writer thread frees, the pattern glibc's allocator handles worst
/// (docs/encoding.md has the measurement).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // A panic of the Parquet library inside a guarded file reader is a damaged file, reported
    // as an error by `crosswalk::io::guard_reader`: nothing to print for it here.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if !crosswalk::io::is_damaged_file_panic(info) {
            default_hook(info)
        }
    }));
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            // A closed pipe (e.g. `crosswalk ... | head`) is not an error.
            if let crosswalk::ErrorKind::Io { source, .. } = err.kind() {
                if source.kind() == std::io::ErrorKind::BrokenPipe {
                    return ExitCode::SUCCESS;
                }
            }
            eprintln!("crosswalk: error: {err}");
            ExitCode::from(err.exit_code() as u8)
        }
    }
}
