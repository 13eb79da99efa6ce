//! The request log: one stderr line per request, and the last 10,000 requests in memory for
//! `GET /_admin/requests` (tests count retries and duplicate POSTs from it).
//!
//! Neither ever holds an `Authorization` value: only whether the header was present.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Mutex;

use serde::Serialize;

/// How many requests `GET /_admin/requests` can return.
pub const CAPACITY: usize = 10_000;

/// One logged request.
#[derive(Debug, Clone, Serialize)]
pub struct Entry {
    /// Method.
    pub method: String,
    /// Path without the query string.
    pub path: String,
    /// Status sent (the scripted one when a fault applied).
    pub status: u16,
    /// Time to the response head, in milliseconds.
    pub ms: f64,
    /// The request's `traceparent`, if any.
    pub traceparent: Option<String>,
    /// Whether an `Authorization` header was present (never its value).
    pub authorized: bool,
    /// Id of the fault applied, if any.
    pub fault: Option<String>,
}

/// Ring buffer of recent requests.
#[derive(Default)]
pub struct RequestLog {
    entries: Mutex<VecDeque<Entry>>,
}

impl RequestLog {
    /// Records a request (and prints its line to stderr), unless it is test-control traffic:
    /// `/_admin/` requests are printed but not kept, so they never disturb request counts.
    pub fn record(&self, entry: Entry, keep: bool) {
        {
            // One write per line, so lines from concurrent requests never interleave.
            let line = format!(
                "{} {} {} {:.1}ms\n",
                entry.method, entry.path, entry.status, entry.ms
            );
            let _ = std::io::stderr().lock().write_all(line.as_bytes());
        }
        if keep {
            let mut entries = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if entries.len() == CAPACITY {
                entries.pop_front();
            }
            entries.push_back(entry);
        }
    }

    /// All kept entries, oldest first.
    pub fn snapshot(&self) -> Vec<Entry> {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// Forgets everything.
    pub fn clear(&self) {
        self.entries
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
    }
}
