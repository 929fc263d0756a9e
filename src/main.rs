//! The `switchyard` binary: parse the command line and hand over to the library, on the
//! runtime `switchyard::runtime` picks for the CPUs this process may use.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = switchyard::cli::Cli::parse();
    match switchyard::runtime::build() {
        Ok(runtime) => runtime.block_on(switchyard::cli::run(cli)),
        Err(e) => switchyard::cli::exit_code(Err(e)),
    }
}
