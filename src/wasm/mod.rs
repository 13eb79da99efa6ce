//! The JavaScript side of the core's `Platform` seam, and the glue between JS values
//! and the core. Compiled only for wasm32.

pub mod abort;
pub mod driver;
pub mod env;
pub mod errors;
pub mod follow;
pub mod js_json;
pub mod js_platform;
pub mod methods;
pub mod options;
pub mod plain;
pub mod process_exports;
pub mod process_methods;
pub mod process_options;
mod process_types;
pub mod sandbox_methods;
pub mod to_js;
mod types;
