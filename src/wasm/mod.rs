//! The JavaScript side of the [`crate::platform::Platform`] seam, and the glue between JS values
//! and the core. Compiled only for wasm32.

pub mod abort;
pub mod calls;
pub mod env;
pub mod errors;
pub mod host;
pub mod js_json;
pub mod options;
pub mod to_js;
mod types;
