//! `org-mesh`: keeps a live twin of an organisation's people, accounts, teams
//! and repositories, and finds drift in it.
//!
//! `org-mesh scan --config examples/demo/org-mesh.yaml` runs one pass and
//! prints a report; see the README for the demo on recorded GitHub data.

// glibc's allocator gives each thread its own arenas and keeps what they
// freed: the memory of compiling plugins on blocking threads stayed in the
// process through a whole scan. mimalloc hands it back and reuses it; on the
// 100k-person scale scan the peak fell from about 935 to about 790 MiB.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod actions;
mod plugin;
mod policy;
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
        /// not suppressed: info, low, medium, high or critical.
        #[arg(long, value_name = "SEVERITY", value_parser = parse_severity)]
        fail_on: Option<Severity>,
        /// Exit with status 4 when a sync failed or anything was skipped,
        /// so CI cannot pass on a scan that did not see everything.
        #[arg(long)]
        strict: bool,
    },
    /// Run continuously: scheduled syncs, webhook and SCIM routes, the API
    /// and /metrics.
    Serve {
        /// The configuration file.
        #[arg(long, short, env = "ORG_MESH_CONFIG", default_value = "org-mesh.yaml")]
        config: PathBuf,
    },
    /// The fix proposals of a running `org-mesh serve`.
    Actions {
        /// The service's URL.
        #[arg(
            long,
            env = "ORG_MESH_URL",
            default_value = "http://127.0.0.1:8080",
            global = true
        )]
        url: String,
        /// An API token: viewer to list, approver to approve or reject.
        #[arg(long, env = "ORG_MESH_TOKEN", hide_env_values = true, global = true)]
        token: Option<String>,
        #[command(subcommand)]
        command: ActionsCommand,
    },
    /// Work on a policy folder without a running service.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Write, build, test and inspect plugins.
    Plugin {
        #[command(subcommand)]
        command: plugin::PluginCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ActionsCommand {
    /// Every proposal with its state and the last step of its trail.
    List {
        /// Only proposals in this state, e.g. awaiting_approval.
        #[arg(long)]
        state: Option<org_mesh_app::actions::State>,
    },
    /// Approve a proposal; it runs once enough people have.
    Approve {
        id: String,
        /// Why, kept in the proposal's trail.
        #[arg(long)]
        reason: String,
    },
    /// Reject a proposal; it never runs.
    Reject {
        id: String,
        /// Why, kept in the proposal's trail.
        #[arg(long)]
        reason: String,
    },
    /// Try a failed or expired fix again: it is planned afresh and the
    /// approval policy decides on it again.
    Retry {
        id: String,
        /// Why, kept in the proposal's trail.
        #[arg(long)]
        reason: String,
    },
}

#[derive(Debug, Subcommand)]
enum PolicyCommand {
    /// Run the folder's Rego tests (rules named test_*), as `opa test`
    /// does; exits 1 when one fails.
    Test {
        /// The policy folder.
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
    /// Decide on one input document and print the decision with the
    /// version of the policy folder that made it.
    Eval {
        /// A JSON file holding the document policies see as `input`; `now`
        /// defaults to the current time.
        #[arg(long, short)]
        input: PathBuf,
        /// The policy folder.
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
        /// The engine asked to decide, as `policies.evaluator` in the
        /// configuration: interpreter or bytecode. The output's
        /// `evaluator` says which one did.
        #[arg(long, value_name = "ENGINE", default_value = "interpreter")]
        evaluator: org_mesh_policy::Evaluator,
    },
}

fn parse_severity(s: &str) -> Result<Severity, String> {
    s.parse()
}

/// `default` applies when `ORG_MESH_LOG` is unset: a scan keeps stderr for
/// problems, a service also logs its lifecycle.
fn init_logging(format: LogFormat, default: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ORG_MESH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
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
/// With `--strict`: the scan ran but did not see everything.
const EXIT_INCOMPLETE: u8 = 4;

/// Tells the user why org-mesh could not do its job, and exits 2.
#[expect(
    clippy::print_stderr,
    reason = "the one place the CLI reports a fatal error"
)]
fn fail(message: &str) -> ExitCode {
    eprintln!("org-mesh: {message}");
    ExitCode::from(EXIT_FAILED)
}

/// Writes the command's output to stdout. A reader that went away before
/// the end (`| head -1`) is no failure: it had what it wanted, and the exit
/// status still says what it would have. Any other failure to write (a
/// full disk under a redirect) means the output is incomplete, so the
/// command fails.
fn emit(text: impl AsRef<str>) {
    use std::io::Write as _;
    let mut out = std::io::stdout().lock();
    let written = out
        .write_all(text.as_ref().as_bytes())
        .and_then(|()| out.flush());
    match written {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            fail(&format!("cannot write the output: {e}"));
            std::process::exit(i32::from(EXIT_FAILED));
        }
        _ => {}
    }
}

/// One line on stderr that says why the exit status is what it is.
#[expect(clippy::print_stderr, reason = "the CLI explains its exit status")]
fn note(message: &str) {
    eprintln!("org-mesh: {message}");
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_level = match cli.command {
        Command::Serve { .. } => "info",
        Command::Scan { .. } | Command::Policy { .. } | Command::Actions { .. } => "warn",
        // The conformance suite makes plugin calls fail on purpose; each
        // failure is in the report, not the log.
        Command::Plugin { .. } => "error",
    };
    init_logging(cli.log_format, default_level);
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
            strict,
        } => runtime.block_on(scan_command(config, json, fail_on, strict)),
        Command::Serve { config } => runtime.block_on(serve_command(config)),
        Command::Actions {
            url,
            token,
            command,
        } => {
            let Some(token) = token else {
                return fail("an API token is needed: --token or ORG_MESH_TOKEN");
            };
            let endpoint = actions::Endpoint { url, token };
            runtime.block_on(async {
                match command {
                    ActionsCommand::List { state } => actions::list(&endpoint, state).await,
                    ActionsCommand::Approve { id, reason } => {
                        actions::decide(&endpoint, &id, actions::Verb::Approve, &reason).await
                    }
                    ActionsCommand::Reject { id, reason } => {
                        actions::decide(&endpoint, &id, actions::Verb::Reject, &reason).await
                    }
                    ActionsCommand::Retry { id, reason } => {
                        actions::decide(&endpoint, &id, actions::Verb::Retry, &reason).await
                    }
                }
            })
        }
        Command::Policy { command } => match command {
            PolicyCommand::Test { dir } => policy::test(&dir),
            PolicyCommand::Eval {
                input,
                dir,
                evaluator,
            } => policy::eval(&input, &dir, evaluator),
        },
        Command::Plugin { command } => runtime.block_on(plugin::run(command)),
    }
}

fn load_config(path: &std::path::Path) -> Result<config::Config, ExitCode> {
    config::Config::load(path).map_err(|e| {
        let problems: Vec<String> = e.problems.iter().map(|p| format!("\n  - {p}")).collect();
        fail(&format!(
            "configuration {}:{}",
            e.path.display(),
            problems.concat()
        ))
    })
}

async fn serve_command(path: PathBuf) -> ExitCode {
    let config = match load_config(&path) {
        Ok(c) => c,
        Err(code) => return code,
    };
    match org_mesh_app::serve::run(config, shutdown_signal()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("serve failed: {e:#}")),
    }
}

/// Resolves on Ctrl-C or SIGTERM, which Kubernetes sends before killing a
/// pod: the server then drains requests in flight.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        () = terminate => {},
    }
    tracing::info!("Shutting down; draining requests in flight");
}

async fn scan_command(
    path: PathBuf,
    json: bool,
    fail_on: Option<Severity>,
    strict: bool,
) -> ExitCode {
    let config = match load_config(&path) {
        Ok(c) => c,
        Err(code) => return code,
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
    emit(&rendered);

    let tripped = fail_on.and_then(|threshold| {
        let n = report
            .findings
            .iter()
            .filter(|r| !r.suppressed() && r.severity >= threshold)
            .count();
        (n > 0).then_some((n, threshold))
    });
    let failed_syncs = report
        .connectors
        .iter()
        .filter(|c| c.error.is_some())
        .count();
    let incomplete = strict && (failed_syncs > 0 || !report.skipped.is_empty());
    if let Some((n, threshold)) = tripped {
        note(&format!(
            "{n} finding(s) at or above {threshold}; exiting 3"
        ));
        ExitCode::from(EXIT_FINDINGS)
    } else if incomplete {
        note(&format!(
            "{failed_syncs} sync(s) failed and {} item(s) were skipped; exiting 4",
            report.skipped.len()
        ));
        ExitCode::from(EXIT_INCOMPLETE)
    } else {
        ExitCode::SUCCESS
    }
}
