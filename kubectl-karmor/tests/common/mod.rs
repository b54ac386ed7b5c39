//! Helpers shared by the plugin's integration tests: a fake API server and collectors for the
//! pull tests, a collector and cgroups for the tests on the real probes.
#![allow(dead_code)]

pub mod api_server;
pub mod collectors;
pub mod moto;
pub mod probes;
pub mod relay;
