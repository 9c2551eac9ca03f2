//! `org-mesh`: keeps a live twin of an organisation's people, accounts, teams
//! and repositories, and finds drift in it.
//!
//! `org-mesh scan --config examples/demo/org-mesh.yaml` runs one pass and
//! prints a report; see the README for the demo on recorded GitHub data.

mod progress;
mod report;

use org_mesh_app::{config, pipeline};

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use org_mesh_model::Severity;

#[derive(Debug, Parser)]
#[command(
    name = "org-mesh",
    version,
    about = "A live twin of your organisation's identities and access"
)]
struct Cli {
    /// Log format on stderr.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "ORG_MESH_LOG_FORMAT", global = true)]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sync every connector, detect drift, ask policy, plan fixes, report.
    Scan {
        /// The configuration file.
        #[arg(long, short, env = "ORG_MESH_CONFIG", default_value = "org-mesh.yaml")]
        config: PathBuf,
        /// One JSON object per finding on stdout instead of the text report.
        #[arg(long)]
        json: bool,
        /// Exit with status 3 when a finding at or above this severity is
        /// not suppressed.
        #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
        fail_on: Option<Severity>,
    },
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORG_MESH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
}

/// The scan could not run: exit 2 with the reason.
const EXIT_FAILED: u8 = 2;
/// The scan ran and found something at or above `--fail-on`.
const EXIT_FINDINGS: u8 = 3;

/// Tells the user why org-mesh could not do its job, and exits 2.
#[expect(
    clippy::print_stderr,
    reason = "the one place the CLI reports a fatal error"
)]
fn fail(message: &str) -> ExitCode {
    eprintln!("org-mesh: {message}");
    ExitCode::from(EXIT_FAILED)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}")),
    };
    match cli.command {
        Command::Scan {
            config,
            json,
            fail_on,
        } => runtime.block_on(scan_command(config, json, fail_on)),
    }
}

async fn scan_command(path: PathBuf, json: bool, fail_on: Option<Severity>) -> ExitCode {
    let config = match config::Config::load(&path) {
        Ok(c) => c,
        Err(e) => {
            let problems: Vec<String> = e.problems.iter().map(|p| format!("\n  - {p}")).collect();
            return fail(&format!(
                "configuration {}:{}",
                e.path.display(),
                problems.concat()
            ));
        }
    };
    let progress = progress::Progress::new(true);
    let report = match pipeline::run(&config, &progress).await {
        Ok(r) => {
            progress.finish();
            r
        }
        Err(e) => {
            progress.finish();
            return fail(&format!("scan failed: {e:#}"));
        }
    };
    let rendered = if json {
        for s in &report.skipped {
            tracing::warn!(skipped = %s, "Left out of the scan");
        }
        report::json_lines(&report)
    } else {
        report::text(&report)
    };
    print!("{rendered}");

    let tripped = fail_on.is_some_and(|threshold| {
        report
            .findings
            .iter()
            .any(|r| !r.suppressed() && r.severity >= threshold)
    });
    if tripped {
        ExitCode::from(EXIT_FINDINGS)
    } else {
        ExitCode::SUCCESS
    }
}
