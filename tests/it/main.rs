//! The integration tests: one binary (hickory-dns's layout), one module per area, each run
//! against real parts (the `meterd` binary, pty pairs, a private mosquitto, tmux).

mod common;
mod review_fixture;

mod api_access;
mod api_parity;
mod api_socket;
mod billing_api;
mod billing_cli;
mod billing_limits;
mod billing_openapi;
mod cli;
mod cradle_cli;
mod cradle_session;
mod fuzz_corpus;
mod gateway_mqtt;
mod input_limits;
mod intervals;
mod intervals_e2e;
mod intervals_usage;
mod meterbus_serial;
mod mqtt_tls;
mod ops_config;
mod ops_crash;
mod ops_daemon;
mod ops_systemd;
mod quarantine;
mod review_approvals;
mod review_cli;
mod review_daemon;
mod review_days;
mod review_remote;
mod review_tmux;
mod review_tui;
mod store;
mod store_backup;
mod store_damage;
mod store_pg;
mod store_pg_diff_billing;
mod store_pg_diff_gateways;
mod store_pg_failover;
mod store_pg_instances;
mod store_pg_migrate;
mod store_redb;
mod wmbus;
