//! Helpers shared by the pull tests.
#![allow(dead_code)]

pub mod api_server;
pub mod collectors;
