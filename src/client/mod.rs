//! The client side of the CLI: how commands reach a running switchyard (`ServerArgs`, the
//! HTTP layer in `http`), how they print (`output`), and the commands themselves: `tail`,
//! `flags`, `breaker`, `strategy`, `send`.
//!
//! Every client command takes the same `--url` (`SWITCHYARD_URL`), `--key` (`SWITCHYARD_KEY`)
//! and `--json`; they are global, so they may come before or after a subcommand.

mod batch;
pub mod breaker;
pub mod flags;
mod http;
pub(crate) mod output;
pub mod send;
mod sse;
pub mod strategy;
pub mod tail;
mod tls;

use clap::Args;

pub use http::ServerError;
pub use tail::{TailArgs, tail};
pub use tls::install_default_provider;

/// Where a CLI command finds the server, and the key it presents.
///
/// The ids are spelled out because the options are global: an id shared with a subcommand's
/// own argument (`flags get KEY`) would make the two one argument.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Base URL of a running switchyard.
    #[arg(
        id = "server_url",
        long = "url",
        env = "SWITCHYARD_URL",
        default_value = "http://127.0.0.1:8080",
        global = true
    )]
    pub url: String,
    /// API key: `read` scope to look, `publish` to send, `admin` to change flags and breakers.
    #[arg(
        id = "api_key",
        long = "key",
        env = "SWITCHYARD_KEY",
        hide_env_values = true,
        global = true
    )]
    pub key: Option<String>,
    /// A PEM file of CA certificates to trust for `https://` and `wss://` besides the public
    /// roots (a switchyard behind a proxy with a private CA's certificate).
    #[arg(
        id = "ca_cert",
        long = "ca-cert",
        env = "SWITCHYARD_CA_CERT",
        value_name = "FILE",
        global = true
    )]
    pub ca_cert: Option<std::path::PathBuf>,
}

/// `http(s)://host/base` -> `ws(s)://host/base{path}`.
pub fn ws_url(base: &str, path: &str) -> anyhow::Result<String> {
    let base = base.trim_end_matches('/');
    let rest = base
        .strip_prefix("http://")
        .map(|r| format!("ws://{r}"))
        .or_else(|| base.strip_prefix("https://").map(|r| format!("wss://{r}")))
        .or_else(|| {
            (base.starts_with("ws://") || base.starts_with("wss://")).then(|| base.to_string())
        })
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--url must start with http://, https://, ws:// or wss:// (got `{base}`)"
            )
        })?;
    Ok(format!("{rest}{path}"))
}
