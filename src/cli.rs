//! The command line: `serve`; the client commands (`tail`, `send`, `flags`, `breaker`,
//! `strategy`, in `crate::client`); `keys`, `openapi`. (The benchmarks are
//! `switchyard-bench`, in the tools/ crate beside the service.)

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::auth::Scope;
use crate::client::output::{Table, cell, line};
use crate::client::{self, TailArgs};
use crate::config::Config;
use crate::{Application, app, store, telemetry};

#[derive(Debug, Parser)]
#[command(
    name = "switchyard",
    version,
    about = "Feature-flag and circuit-breaker control plane for live monitoring events"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the service.
    Serve(Box<Config>),
    /// Subscribe to a running switchyard and print events as lines.
    Tail(TailArgs),
    /// Publish events from arguments, a file or stdin.
    Send(client::send::SendArgs),
    /// Read and flip flags on a running switchyard.
    Flags(client::flags::FlagsArgs),
    /// The circuit breakers: status, a live watch, and forcing or resetting them.
    Breaker(client::breaker::BreakerArgs),
    /// Where events go now: the broadcast strategy and each category's route.
    Strategy(client::strategy::StrategyArgs),
    /// Manage API keys (talks to the control store directly).
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
        #[command(flatten)]
        db: DatabaseArgs,
        /// Print JSON instead of text.
        #[arg(long, global = true)]
        json: bool,
    },
    /// Print the OpenAPI document (what `openapi/openapi.json` holds).
    Openapi,
    /// The migration rehearsed on scratch databases (issue 12). The drill is a load tool and
    /// lives in the tools crate, not in the service: this runs `switchyard-bench drill` from
    /// beside this binary with the same arguments (`switchyard drill --help` shows them), or
    /// says how to build it.
    #[command(disable_help_flag = true)]
    Drill {
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
}

#[derive(Debug, Args)]
pub struct DatabaseArgs {
    /// The control store.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/switchyard",
        hide_env_values = true,
        global = true
    )]
    pub database_url: String,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; it is printed once and stored only as a hash.
    Create {
        #[arg(long, value_enum)]
        scope: Scope,
        /// A name to tell the key apart (the actor in audit rows). Default: `<scope>-<n>`.
        #[arg(long)]
        name: Option<String>,
    },
    /// List keys (never the keys themselves).
    List,
    /// Revoke the active key with this name or id.
    Revoke { name_or_id: String },
}

pub async fn run(cli: Cli) -> ExitCode {
    crate::client::install_default_provider();
    let result = match cli.command {
        Command::Serve(mut config) => {
            config.flag_env = crate::config::flag_pins_from_env(std::env::vars());
            serve(*config).await
        }
        Command::Tail(args) => client::tail(args).await,
        Command::Send(args) => client::send::run(args).await,
        Command::Flags(args) => client::flags::run(args).await,
        Command::Breaker(args) => client::breaker::run(args).await,
        Command::Strategy(args) => client::strategy::run(args).await,
        Command::Keys { command, db, json } => keys(command, &db.database_url, json).await,
        Command::Drill { args } => drill(&args),
        Command::Openapi => std::io::Write::write_all(
            &mut std::io::stdout(),
            crate::api::openapi_json().as_bytes(),
        )
        .map_err(Into::into),
    };
    exit_code(result)
}

/// How a command's outcome ends the process: errors printed with their causes, a reader that
/// went away (`| head`) not an error. Shared with `switchyard-bench`.
pub fn exit_code(result: anyhow::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // The reader went away (`| head`): it has what it wanted; end quietly.
        Err(e) if broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|e| e.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

async fn serve(config: Config) -> anyhow::Result<()> {
    telemetry::init(config.log_format, &config.log);
    let app = Application::build(config).await?;
    app.run_until_stopped(app::shutdown_signal()).await?;
    Ok(())
}

async fn keys(command: KeysCommand, database_url: &str, json: bool) -> anyhow::Result<()> {
    let pool = store::connect_and_migrate(database_url).await?;
    match command {
        KeysCommand::Create { scope, name } => {
            let name = match name {
                Some(name) => name,
                None => format!(
                    "{}-{}",
                    scope.as_str(),
                    &uuid::Uuid::new_v4().simple().to_string()[..8]
                ),
            };
            let created = store::keys::create(&pool, &name, scope).await.map_err(|e| match &e {
                sqlx::Error::Database(db) if db.code().as_deref() == Some("23505") => {
                    anyhow::anyhow!("an active key named `{name}` exists already; revoke it or pick another --name")
                }
                sqlx::Error::Database(db) if db.code().as_deref() == Some("23514") => {
                    anyhow::anyhow!("a key name must be 1 to 100 characters")
                }
                _ => e.into(),
            })?;
            eprintln!(
                "created {} key `{}` (shown once; store it now):",
                scope.as_str(),
                created.record.name
            );
            if json {
                line(serde_json::to_string_pretty(&created)?)?;
            } else {
                line(&created.key)?;
            }
        }
        KeysCommand::List => {
            let keys = store::keys::list(&pool).await?;
            if json {
                return Ok(line(serde_json::to_string_pretty(&keys)?)?);
            }
            let mut table = Table::new(&["ID", "NAME", "SCOPE", "PREFIX", "CREATED", "REVOKED"]);
            for key in keys {
                let revoked = key.revoked_at.map(|t| t.to_rfc3339());
                table.row(vec![
                    cell(key.id.to_string()),
                    cell(key.name),
                    cell(key.scope.as_str()),
                    cell(key.prefix),
                    cell(key.created_at.to_rfc3339()),
                    cell(revoked.unwrap_or_else(|| "-".into())),
                ]);
            }
            table.print()?;
        }
        KeysCommand::Revoke { name_or_id } => {
            match store::keys::revoke(&pool, &name_or_id).await? {
                Some(key) if json => line(serde_json::to_string_pretty(&key)?)?,
                Some(key) => line(format_args!(
                    "revoked `{}` ({}); running servers stop accepting it at once (within 30 s for one that cannot reach the database)",
                    key.name, key.id
                ))?,
                None => anyhow::bail!("no active key named `{name_or_id}`"),
            }
        }
    }
    Ok(())
}

/// Runs the tools binary's `drill` beside this one (a workspace build puts both in one
/// directory), so the service binary carries no load tool and `switchyard drill` still works.
fn drill(args: &[String]) -> anyhow::Result<()> {
    let beside = std::env::current_exe()?.with_file_name("switchyard-bench");
    if !beside.exists() {
        anyhow::bail!(
            "the drill is in the tools crate: build it with `cargo build --release --workspace` \
             (then `switchyard drill` runs it), or run `cargo run --release -p switchyard-tools -- drill`; \
             looked for {}",
            beside.display()
        );
    }
    let status = std::process::Command::new(&beside)
        .arg("drill")
        .args(args)
        .status()?;
    anyhow::ensure!(
        status.success(),
        "the drill reported a broken promise ({status})"
    );
    Ok(())
}
