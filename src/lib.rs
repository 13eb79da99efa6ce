//! tensorlake-snapshots: the Tensorlake Sandbox snapshot API for JavaScript, from one small
//! WebAssembly module that runs in browsers, workers, Node, Deno and Bun.
//!
//! The crate is a pure-Rust core (every module below except `wasm`) that `cargo test` exercises
//! natively through the [`platform::Platform`] seam, and a thin `#[wasm_bindgen]` facade in
//! `wasm/` that binds that seam to `fetch`, timers and `JSON.parse`.
#![deny(missing_docs)]

pub mod args;
pub mod config;
pub mod decimal;
pub mod error;
pub mod http;
pub mod json_out;
pub mod models;
pub mod ops;
pub mod platform;
pub mod retry;
pub mod routes;
pub mod sse;
pub mod time;
pub mod trace;
pub mod url;
pub mod wait;

#[cfg(test)]
mod testing;
