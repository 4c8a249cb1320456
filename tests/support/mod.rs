//! The one test kit. Every integration test binary declares `mod support;`
//! (tests/safety/main.rs, being one directory down, includes it with one
//! `#[path]`) and imports what it needs with `use support::MODULE::{...}`.
//! One module per concern; a helper lives in exactly one place.
//!
//! | module     | holds                                                                 | was |
//! |------------|-----------------------------------------------------------------------|-----|
//! | `compile`  | `try_compile`, `compile` (JSON), `compile_yaml`, `compile_named`, `compile_value`, `version_of` | common::{try_compile, compile, compile_value}, flagd_common::snapshot, exposure_support::snapshot, safety `snap`/`snap_named`, four local `version_of` |
//! | `context`  | `Unit` (engine `Context`), `sv`, `proto_ctx` (protobuf `Struct`), `json_ctx` (JSON object) | common::Unit, server_common::{sv, ctx}, exposure_support::{proto_ctx, ctx} |
//! | `engine`   | `eval`, `unit_id`, `Kinds` trace, chi-square, `proptest_config`     | common::* |
//! | `sink`     | `RecordingSink`, `Seen` (experiment, variant, unit, source, config_version) | server_common::RecordingSink (tuples), flagd_common::{RecordingSink, Seen} |
//! | `server`   | in-process cohortd server: `CONFIG`, `write_config`, `start`, `TestServer`; with OFREP: `start_ofrep`, `OfrepServer` | server_common::*, the `Srv`/`start` of ofrep.rs and openfeature_ofrep.rs |
//! | `flagd`    | flagd fixture `CONFIG`, `store`, in-process flagd `start`/`start_with`, `expectations`, `changed_config`, `stopped_kill_switch`, `contexts`, `PLAIN_FLAGS` | flagd_common::*, clients_common::{contexts, changed_config, PLAIN_FLAGS} |
//! | `pipeline` | in-process server with the real exposure pipeline: `serve`, `Served` | exposure_support::{serve, Served} |
//! | `otlp`     | OTLP/gRPC `Receiver`, `attrs`, `V`, `hex`, `collector_json_line`    | exposure_support::otlp |
//! | `binary`   | the real binary: `spawn`, `spawn_keep_stderr`, `Server` (serve on free ports), `free_port`, `Killed` (kill on drop), `cohortd`/`cohortd_text` (one CLI run), `experiment` | hardening_support::*, clients_common::free_port, four local `free_port`, `Killed`/`Reaped`/`Binary`/`Server(Child)`, `cohortd(args, stdin)` of cli_ux.rs and engine_determinism.rs |
//! | `clients`  | two spawned servers (TCP+OFREP, Unix socket) and offline `assign --all` cases: `serve`, `Served` | clients_common::{serve, Served} |
//! | `providers` | the OpenFeature flagd-provider tests on flagd files: `FLAGS`, `contexts`, `expected`, `FlagdServe`, `drive`, `changed_flags` | flagd_providers::* |
//! | `process`  | `Driven`: a client process driven line by line with one deadline    | flagd_common::Driven |
//! | `runners`  | `python`, `require_python`, `script`, `node_dir`, `installed`, `repo` | flagd_common/analysis_support::python, local `python`/`node_dir`/`repo`/`script`, clients_common::installed |
//! | `http`     | `request` (any method, headers, body -> `Resp`), `http_get`, `ofrep_post`, `http_get_blocking` (HTTP/1.0) | server_common::http_get, hardening_support::http_get, the `request` of ofrep.rs, `http_post` of flagd_files.rs, `get_with` of security_auth.rs |
//! | `wait`     | `wait_until` (blocking), `eventually` (async), both bounded         | hardening_support::wait_until, security_support::eventually |
//! | `tls`      | rcgen `Ca`/`Pair`, TLS channel, `https_get`, `served_cert`, `der`, `write_secret`, `tls_files`, `serve_tls` | security_support::*, the `write_secret`/`files`/`serve` of security_tls*.rs |
//! | `unix`     | `unix_channel`, `unix_client`: cohortd.v1 over a Unix socket        | local `client(sock)` in reload_serve/server_binary, server_ops::uds_client |
//! | `kubelet`  | `AtomicWriter`: the kubelet's ConfigMap `..data` swap               | `#[path = "support/kubelet.rs"]` includes |
//! | `analysis` | `cohortd analyze` inputs: `at`, `exposure`, `outcome`, `population`, `to_otlp`, `to_csv`, `analyze`, `report` | analysis_support::* |
//! | `rng`      | `Rng` (SplitMix64) with `next_u64`, `below`, `pick`, `percent`, `uniform`, `chance`, `normal` | analysis_support::Rng, flagd_format_differential's `Rng` |

// Each test binary compiles the whole kit and uses only part of it: what one
// binary leaves unused is used by another, so dead code is not a finding here.
#![allow(dead_code)]

pub mod analysis;
pub mod binary;
pub mod clients;
pub mod compile;
pub mod context;
pub mod engine;
pub mod flagd;
pub mod http;
pub mod kubelet;
pub mod otlp;
pub mod pipeline;
pub mod process;
pub mod providers;
pub mod rng;
pub mod runners;
pub mod server;
pub mod sink;
pub mod tls;
pub mod unix;
pub mod wait;
