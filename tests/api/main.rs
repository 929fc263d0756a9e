//! The integration tests: one binary (one link, fast to build), one module per area. Every
//! test starts the real switchyard on a free port against its own fresh Postgres database and
//! talks to it over real sockets; see `support`.

mod architecture;
mod auth;
mod breakers;
mod cli;
mod consistency;
mod dashboard_page;
mod dashboards;
mod fault_proxy;
mod flags;
mod governance;
mod governed_path;
mod legacy;
mod metrics;
mod migrations;
mod publish;
mod realtime;
mod resilience;
mod restart;
mod rollouts;
mod schedules;
mod serve_binary;
mod shutdown;
mod stream_sse;
mod subscribe_ws;
mod support;
mod tls;
mod validation;
