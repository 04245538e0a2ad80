//! The terminal client (`loopchat client URL`). Being written.

use std::process::ExitCode;

/// Runs the terminal client against `url`, taking nickname `nick` if given.
pub fn run(url: &str, nick: Option<&str>) -> ExitCode {
    let _ = (url, nick);
    eprintln!("loopchat client: not written yet");
    ExitCode::FAILURE
}
