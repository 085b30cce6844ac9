//! Checks system description files and prints their diagnostics:
//! `cargo run -p sdf --example check -- microkit.system`.

use std::path::Path;
use std::process::ExitCode;

fn main() -> ExitCode {
    let mut status = ExitCode::SUCCESS;
    for path in std::env::args().skip(1) {
        match tools_sdf::parse_file(Path::new(&path)) {
            Ok(system) => println!("{path}: ok, {} protection domains", system.all_pds().len()),
            Err(diagnostics) => {
                eprintln!("{diagnostics}");
                status = ExitCode::FAILURE;
            }
        }
    }
    status
}
