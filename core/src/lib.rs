//! tensorlake-snapshots-core: everything the Tensorlake snapshot client does that is not
//! JavaScript. Configuration and routing, request building, one call's attempts and retries,
//! waiting for a snapshot, and decoding responses, all written against the [`platform::Platform`]
//! seam so `cargo test` runs them natively with scripted fakes. This crate does not depend on
//! wasm-bindgen; the root crate `tensorlake-snapshots` binds the seam to `fetch`, timers and
//! `JSON.parse` and exports the JS API.
//!
//! `wire-protocol §N` in comments is section N of the repository's `docs/wire-protocol.md`: the
//! routes, bodies, statuses and headers the code relies on, with their sources in the official SDKs.
#![deny(missing_docs)]

pub mod api;
pub mod args;
pub mod call;
pub mod config;
pub mod decimal;
pub mod error;
pub mod json_out;
pub mod models;
mod outcome;
pub mod platform;
pub mod processes;
pub mod retry;
pub mod routes;
pub mod sse;
pub mod text;
pub mod time;
pub mod trace;
pub mod url;
pub mod wait;

#[cfg(test)]
mod testing;

#[cfg(all(test, not(target_arch = "wasm32")))]
mod proptests;
