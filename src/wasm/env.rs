//! What kind of JS host this is, and its environment variables.

use js_sys::{global, Reflect};
use wasm_bindgen::JsValue;

use tensorlake_snapshots_core::config::{Environment, Secret};

fn global_get(path: &[&str]) -> Option<JsValue> {
    let mut value: JsValue = global().into();
    for key in path {
        // Deno without --allow-env throws here; that reads as "not set".
        value = Reflect::get(&value, &(*key).into()).ok()?;
        if value.is_null_or_undefined() {
            return None;
        }
    }
    Some(value)
}

fn env_var(name: &str) -> Option<String> {
    global_get(&["process", "env", name])?.as_string()
}

/// `TENSORLAKE_API_URL`, `TENSORLAKE_API_KEY` and `INDEXIFY_NAMESPACE` from `process.env`
/// (Node, Bun, Deno); empty in browsers.
pub fn environment() -> Environment {
    Environment {
        api_url: env_var("TENSORLAKE_API_URL"),
        api_key: env_var("TENSORLAKE_API_KEY").map(Secret::new),
        namespace: env_var("INDEXIFY_NAMESPACE"),
    }
}

/// True in a web page or a web worker: places where a key in the code is a key given away.
/// Server runtimes (Node, Deno, Bun) have no `document` and no `WorkerGlobalScope`.
pub fn is_browser() -> bool {
    if global_get(&["process", "versions", "node"]).is_some() {
        return false;
    }
    global_get(&["document"]).is_some() || global_get(&["WorkerGlobalScope"]).is_some()
}

/// The `User-Agent` to send, where a script may set one.
pub fn user_agent() -> Option<String> {
    if is_browser() {
        None
    } else {
        Some(concat!("tensorlake-snapshots/", env!("CARGO_PKG_VERSION")).to_string())
    }
}
