//! Shared by the SDK's real-server tests and by examples/late_joiner_check.rs (which includes
//! this directory with `#[path]`). Each user takes what it needs; the rest is dead code to it.
#![allow(dead_code)]

pub mod client;
pub mod crowd;
pub mod late_joiner;
pub mod proxy;
pub mod rest;
pub mod server;
