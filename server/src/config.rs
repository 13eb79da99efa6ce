//! Command-line flags and the live, admin-adjustable timing knobs.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};

use clap::Parser;

/// Everything `tensorlake-local` can be told on its command line.
#[derive(Parser, Debug, Clone)]
#[command(
    name = "tensorlake-local",
    version,
    // A later flag wins over an earlier one, so wrappers can append overrides.
    args_override_self = true,
    about = "A Tensorlake-compatible sandbox and snapshot API on loopback, with real jailed sandboxes.",
    long_about = "A Tensorlake-compatible sandbox and snapshot API on loopback, with real jailed sandboxes.\n\n\
Serves the lifecycle API under /v1/namespaces/{ns}/... and bare /..., the sandbox process and file \
API under /api/v1/... (selected by `Host: {id}.local` or `X-Tensorlake-Sandbox-Id: {id}`), and a \
test-control API under /_admin/. Always binds 127.0.0.1. The first line on stdout is \
`tensorlake-local listening on http://127.0.0.1:PORT`; one log line per request goes to stderr.\n\n\
Commands run under bubblewrap (`bwrap`); set TENSORLAKE_LOCAL_BWRAP to use another bwrap binary \
(a path that does not exist makes the process and file routes answer 503). See server/README.md."
)]
pub struct Args {
    /// TCP port on 127.0.0.1 (0 picks a free port; the first stdout line says which).
    #[arg(long, default_value_t = 8900)]
    pub port: u16,

    /// Directory for the SQLite metadata, sandbox roots and snapshot archives.
    #[arg(long, default_value = ".tensorlake-local")]
    pub data_dir: PathBuf,

    /// Require `Authorization: Bearer KEY` on every API and process route (401 otherwise).
    /// Prefer the environment variable: a command-line argument is visible to other local users.
    #[arg(long, env = "TENSORLAKE_LOCAL_API_KEY", hide_env_values = true)]
    pub api_key: Option<String>,

    /// Origin allowed to call the API from a browser (repeatable; `*` allows any). When given,
    /// replaces the default, which is any http://localhost:* and http://127.0.0.1:* origin.
    #[arg(long = "cors-origin", value_name = "ORIGIN")]
    pub cors_origins: Vec<String>,

    /// Serve this directory at `/` for paths the API does not use (the demo page and `pkg/`).
    #[arg(long = "static", value_name = "DIR")]
    pub static_dir: Option<PathBuf>,

    /// Minimum time a snapshot stays `in_progress` after its archive is written.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub snapshot_local_ready_ms: u64,

    /// Time from `local_ready` to `completed`.
    #[arg(long, default_value_t = 1500, value_name = "MS")]
    pub snapshot_completed_ms: u64,

    /// Time a new sandbox stays `pending` (0: create answers `running`).
    #[arg(long, default_value_t = 0, value_name = "MS")]
    pub sandbox_startup_ms: u64,

    /// Most processes and threads one sandbox may have at once (cgroup pids limit), so a fork
    /// bomb stays inside its sandbox.
    #[arg(long, default_value_t = 512, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_pids_per_sandbox: u64,
}

impl Args {
    /// Refuses flag values the server must not start with; the message names the flag.
    ///
    /// An empty key used to let any `Authorization` header in, so it is an error rather than
    /// "no key". `env_key` is `TENSORLAKE_LOCAL_API_KEY` as the process saw it: clap treats an
    /// empty variable as absent, which would silently start an open server for someone who
    /// meant to set a key.
    pub fn check(&self, env_key: Option<&std::ffi::OsStr>) -> Result<(), String> {
        match (&self.api_key, env_key) {
            (Some(key), _) => api_key_problem(key)
                .map_or(Ok(()), |p| Err(format!("--api-key / TENSORLAKE_LOCAL_API_KEY {p}"))),
            (None, Some(v)) if v.is_empty() => Err(
                "TENSORLAKE_LOCAL_API_KEY is set but empty: an empty key would let every request in. \
Set it to a real key, or unset it to run without a key"
                    .into(),
            ),
            (None, _) => Ok(()),
        }
    }
}

/// Why `key` cannot be an API key, if it cannot. A key must be presentable in an
/// `Authorization: Bearer` header as-is (the server trims what it receives), so empty keys,
/// spaces and control or non-ASCII characters are refused rather than never matching.
fn api_key_problem(key: &str) -> Option<&'static str> {
    if key.is_empty() {
        Some("is empty: an empty key would let every request in. Pass a real key, or omit the flag and the variable to run without a key")
    } else if !key.bytes().all(|b| b.is_ascii_graphic()) {
        Some("contains spaces, control or non-ASCII characters, which cannot be sent in an `Authorization: Bearer` header")
    } else {
        None
    }
}

/// The three timing knobs, adjustable at run time through `PUT /_admin/timing`.
///
/// Atomics rather than a lock: every snapshot and sandbox creation reads them.
#[derive(Debug)]
pub struct Timing {
    local_ready_ms: AtomicU64,
    completed_ms: AtomicU64,
    startup_ms: AtomicU64,
    defaults: [u64; 3],
}

/// A copy of the timing knobs at one moment.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub struct TimingValues {
    /// See [`Args::snapshot_local_ready_ms`].
    pub snapshot_local_ready_ms: u64,
    /// See [`Args::snapshot_completed_ms`].
    pub snapshot_completed_ms: u64,
    /// See [`Args::sandbox_startup_ms`].
    pub sandbox_startup_ms: u64,
}

impl Timing {
    /// Knobs starting at the flag values, which `reset` returns to.
    pub fn new(args: &Args) -> Self {
        let defaults = [
            args.snapshot_local_ready_ms,
            args.snapshot_completed_ms,
            args.sandbox_startup_ms,
        ];
        Timing {
            local_ready_ms: AtomicU64::new(defaults[0]),
            completed_ms: AtomicU64::new(defaults[1]),
            startup_ms: AtomicU64::new(defaults[2]),
            defaults,
        }
    }

    /// Current values.
    pub fn get(&self) -> TimingValues {
        TimingValues {
            snapshot_local_ready_ms: self.local_ready_ms.load(Ordering::Relaxed),
            snapshot_completed_ms: self.completed_ms.load(Ordering::Relaxed),
            sandbox_startup_ms: self.startup_ms.load(Ordering::Relaxed),
        }
    }

    /// Changes the knobs that are `Some`.
    pub fn set(&self, local_ready: Option<u64>, completed: Option<u64>, startup: Option<u64>) {
        if let Some(v) = local_ready {
            self.local_ready_ms.store(v, Ordering::Relaxed);
        }
        if let Some(v) = completed {
            self.completed_ms.store(v, Ordering::Relaxed);
        }
        if let Some(v) = startup {
            self.startup_ms.store(v, Ordering::Relaxed);
        }
    }

    /// Back to the command-line values.
    pub fn reset(&self) {
        self.set(
            Some(self.defaults[0]),
            Some(self.defaults[1]),
            Some(self.defaults[2]),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::api_key_problem;

    #[test]
    fn keys_that_could_never_match_or_would_match_anything_are_refused() {
        assert!(api_key_problem("").is_some());
        assert!(api_key_problem(" ").is_some());
        assert!(api_key_problem("a b").is_some());
        assert!(api_key_problem("k\n").is_some());
        assert!(api_key_problem("ké").is_some());
        assert!(api_key_problem("tl_apiKey_123-x.y").is_none());
    }
}
