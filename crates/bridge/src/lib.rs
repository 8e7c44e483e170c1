//! mmplug-bridge: the plugin executable Mattermost launches.
//!
//! # Layout
//! - [`manifest`]: finds and reads the bundle's `plugin.json`.
//! - [`pyenv`]: which Python runs the plugin; offline bundles' wheels unpacked once.
//! - [`python`]: the Python process: interpreter discovery, scrubbed environment, spawn, logs.
//! - [`log`]: the bridge's own hclog-JSON log lines on stderr.
//! - [`pbvalue`]: props (`google.protobuf.Value`/`Struct`) straight between gob and bytes.
//! - [`deadline`]: the hooks' time limits on one timer, not one per call.
//! - [`cpu`]: the bridge and Python on one CPU, so a call between them wakes no idle CPU.
#![deny(missing_debug_implementations)]

pub mod bridge;
pub mod cpu;
pub mod deadline;
pub mod grpc;
pub mod http;
pub mod ioreader;
pub mod lane;
pub mod log;
pub mod manifest;
pub mod pbvalue;
pub mod pyenv;
pub mod python;
pub mod run;
pub mod schema;
pub mod translate;
