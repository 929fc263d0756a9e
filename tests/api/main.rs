//! The integration tests: one binary (one link, fast to build), one module per area. Every
//! test starts the real switchyard on a free port against its own fresh Postgres database and
//! talks to it over real sockets; see `support`.

mod architecture;
mod auth;
mod breakers;
mod category_share;
mod cli;
mod connections;
mod consistency;
mod dashboard_page;
mod dashboard_public;
mod dashboard_timeline;
mod dashboards;
mod fault_proxy;
mod flags;
mod governance;
mod governed_path;
mod hostile_input;
mod legacy;
mod metrics;
mod migrations;
mod publish;
mod quarantine;
mod realtime;
mod realtime_sink;
mod resilience;
mod restart;
mod rollouts;
mod scale_out;
mod schedules;
mod secrets;
mod serve_binary;
mod shutdown;
mod stream_limits;
mod stream_sse;
mod subscribe_ws;
mod support;
mod tls;
mod validation;
