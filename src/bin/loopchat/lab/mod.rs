//! `loopchat lab`: the experiments behind docs/REPORT.md.
//!
//! - `write-floor` measures what the kernel charges for one loopback write of K frames
//!   ([`write_floor`]): the physical limit beside which the report sets loopchat's CPU
//!   per delivery.
//! - `report` draws the report's figures (SVG, with `plotters`) and writes its generated
//!   tables into docs/REPORT.md ([`report`]), from raw results kept in the repository:
//!   benches/experiments.sh's (docs/report/results/), benches/compare.sh's
//!   (docs/bench/results/) and benches/scaleout.sh's (docs/bench/scaleout/).

pub mod report;
pub mod write_floor;

use clap::{Args, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

/// `loopchat lab EXPERIMENT`.
#[derive(Subcommand, Debug, Clone)]
pub enum LabCommand {
    /// Measure the writer's CPU per frame for loopback writes of K frames each, with
    /// nothing else to do: the floor under any server's CPU per delivery. Prints JSON.
    WriteFloor(WriteFloorArgs),
    /// Draw docs/REPORT.md's figures and rewrite its generated tables from the raw
    /// results in the repository.
    Report(ReportArgs),
}

/// Options of `loopchat lab write-floor`.
#[derive(Args, Debug, Clone)]
pub struct WriteFloorArgs {
    /// Frames in each write: one measurement for each (1 to 65,536).
    #[arg(
        long,
        value_name = "K[,K...]",
        value_delimiter = ',',
        default_value = "1,2,4,8,16,32,64,128"
    )]
    pub frames_per_write: Vec<usize>,

    /// Payload bytes of each frame.
    #[arg(long, value_name = "BYTES", default_value_t = 64)]
    pub size: usize,

    /// Loopback connections, written to in turn.
    #[arg(long, value_name = "C", default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=20_000))]
    pub connections: u32,

    /// Seconds each measurement writes for.
    #[arg(long, value_name = "SECONDS", default_value = "2", value_parser = crate::client::parse_seconds)]
    pub duration: Duration,

    /// Pin the writing thread to this CPU (as a server is pinned by the benchmarks).
    #[arg(long, value_name = "CPU")]
    pub writer_cpu: Option<usize>,

    /// Pin the reading thread to this CPU (as the load generator is).
    #[arg(long, value_name = "CPU")]
    pub reader_cpu: Option<usize>,
}

/// Options of `loopchat lab report`.
#[derive(Args, Debug, Clone)]
pub struct ReportArgs {
    /// The repository whose docs/ are read and written.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub root: PathBuf,

    /// Write nothing; exit 1 if docs/REPORT.md or a figure differs from what the raw
    /// results give.
    #[arg(long)]
    pub check: bool,
}

/// Runs a `loopchat lab` command.
pub fn main(command: LabCommand) -> ExitCode {
    match command {
        LabCommand::WriteFloor(a) => {
            let spec = write_floor::FloorSpec {
                frames_per_write: a.frames_per_write,
                size: a.size,
                connections: a.connections as usize,
                duration: a.duration,
                writer_cpu: a.writer_cpu,
                reader_cpu: a.reader_cpu,
            };
            match write_floor::run(&spec).and_then(|r| Ok(serde_json::to_string(&r)?)) {
                Ok(json) => {
                    println!("{json}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("loopchat lab write-floor: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        LabCommand::Report(a) => match report::write(&a.root, a.check) {
            Ok(changed) if a.check && !changed.is_empty() => {
                eprintln!(
                    "loopchat lab report: not what the raw results give: {}\n\
                     run `loopchat lab report` and commit the result",
                    changed.join(", ")
                );
                ExitCode::FAILURE
            }
            Ok(changed) => {
                for path in changed {
                    eprintln!("wrote {path}");
                }
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("loopchat lab report: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
