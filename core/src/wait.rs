//! Waiting for a snapshot: the poll loop behind `snapshotAndWait`, `waitForSnapshot` and
//! `watchSnapshot`.
//!
//! It polls the snapshot record (never the sandbox), first at once and then every poll interval,
//! each sleep cut to the time left so the deadline is kept to the poll. A status change is
//! reported once. A retryable failure of one poll (a 503, a dropped connection) does not end the
//! wait; the next poll waits at least as long as the server's `Retry-After`. The target status is
//! checked before `failed`, as the SDKs do.

use crate::args::{self, ArgError};
use crate::error::Error;
use crate::call::{Budget, MIN_ATTEMPT_MS};
use crate::models::SnapshotRecord;
use crate::api::Api;
use crate::platform::{Json, Platform};

/// The status a wait ends on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitUntil {
    /// `local_ready` (or `completed`): enough to restore from, the SDKs' default.
    LocalReady,
    /// `completed`: uploaded to durable storage.
    Completed,
}

impl WaitUntil {
    /// Parses `waitUntil`.
    pub fn parse(value: &str) -> Result<WaitUntil, ArgError> {
        match args::one_of("waitUntil", value, &["local_ready", "completed"])? {
            "completed" => Ok(WaitUntil::Completed),
            _ => Ok(WaitUntil::LocalReady),
        }
    }
    /// The wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            WaitUntil::LocalReady => "local_ready",
            WaitUntil::Completed => "completed",
        }
    }
}

/// What a status means for a wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The wait is over.
    Reached,
    /// The snapshot failed.
    Failed,
    /// The snapshot is being deleted and will never get there.
    Deleting,
    /// Keep polling (including statuses this client does not know yet).
    Pending,
}

/// Judges a status against the target.
pub fn judge(status: &str, until: WaitUntil) -> Verdict {
    match (status, until) {
        ("completed", _) | ("local_ready", WaitUntil::LocalReady) => Verdict::Reached,
        ("failed", _) => Verdict::Failed,
        ("deleting", _) => Verdict::Deleting,
        _ => Verdict::Pending,
    }
}

/// Defaults of the official SDKs.
pub const DEFAULT_TIMEOUT_S: f64 = 300.0;
/// Seconds between polls by default.
pub const DEFAULT_POLL_INTERVAL_S: f64 = 1.0;

/// Validated wait options, checked before any request is sent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WaitOptions {
    /// The target status.
    pub until: WaitUntil,
    /// Total time allowed, seconds.
    pub timeout_s: f64,
    /// Time between polls, milliseconds.
    pub poll_interval_ms: f64,
}

impl WaitOptions {
    /// Validates `timeout`, `pollInterval` and `waitUntil`; `None` takes the default.
    pub fn new(timeout_s: Option<f64>, poll_interval_s: Option<f64>, until: Option<&str>) -> Result<WaitOptions, ArgError> {
        Ok(WaitOptions {
            until: match until {
                Some(u) => WaitUntil::parse(u)?,
                None => WaitUntil::LocalReady,
            },
            timeout_s: args::seconds("timeout", timeout_s.unwrap_or(DEFAULT_TIMEOUT_S))?,
            poll_interval_ms: args::poll_interval("pollInterval", poll_interval_s.unwrap_or(DEFAULT_POLL_INTERVAL_S))? * 1000.0,
        })
    }
}

/// A validated wait request: which snapshot, and how.
#[derive(Debug, Clone, PartialEq)]
pub struct WaitSpec {
    /// The snapshot.
    pub snapshot_id: String,
    /// The target status.
    pub until: WaitUntil,
    /// Total time allowed, seconds.
    pub timeout_s: f64,
    /// Time between polls, milliseconds.
    pub poll_interval_ms: f64,
}

impl WaitSpec {
    /// Validates everything; `None` takes the default.
    pub fn new(snapshot_id: &str, timeout_s: Option<f64>, poll_interval_s: Option<f64>, until: Option<&str>) -> Result<WaitSpec, ArgError> {
        let snapshot_id = args::id("snapshotId", snapshot_id)?;
        Ok(WaitSpec::for_snapshot(snapshot_id, WaitOptions::new(timeout_s, poll_interval_s, until)?))
    }

    /// Combines an id known to be valid (one the server just returned) with checked options.
    pub fn for_snapshot(snapshot_id: String, options: WaitOptions) -> WaitSpec {
        WaitSpec { snapshot_id, until: options.until, timeout_s: options.timeout_s, poll_interval_ms: options.poll_interval_ms }
    }
}

/// A wait in progress. [`Waiter::next_change`] advances it to the next status change.
pub struct Waiter<P: Platform> {
    spec: WaitSpec,
    deadline_ms: f64,
    next_delay_ms: Option<f64>,
    last_status: Option<String>,
    last_trace: String,
    last_error: Option<String>,
    done: bool,
    pending: Option<Error<P>>,
}

impl<P: Platform> Waiter<P> {
    /// A wait whose clock started at `started_ms` (the start of `snapshotAndWait`, so the
    /// snapshot request itself counts against the timeout).
    pub fn new(spec: WaitSpec, started_ms: f64) -> Waiter<P> {
        let deadline_ms = started_ms + spec.timeout_s * 1000.0;
        Waiter {
            spec,
            deadline_ms,
            next_delay_ms: None,
            last_status: None,
            last_trace: String::new(),
            last_error: None,
            done: false,
            pending: None,
        }
    }

    /// True once the target was reached or the wait failed; `next_change` then returns `None`.
    pub fn is_done(&self) -> bool {
        self.done && self.pending.is_none()
    }

    /// Stops the wait (an iterator's `return()`); later calls return `None`.
    pub fn finish(&mut self) {
        self.done = true;
        self.pending = None;
    }

    /// Polls until the status changes, and returns the snapshot with its new status. The change
    /// that reaches the target ends the wait; a change to `failed` is returned first and the
    /// failure is raised by the following call, so an observer sees every status.
    pub async fn next_change(
        &mut self,
        api: &Api<'_, P>,
    ) -> Result<Option<SnapshotRecord<P::Json>>, Error<P>> {
        if let Some(failure) = self.pending.take() {
            self.done = true;
            return Err(failure);
        }
        if self.done {
            return Ok(None);
        }
        match self.advance(api).await {
            Ok(record) => Ok(Some(record)),
            Err(err) => {
                self.done = true;
                Err(err)
            }
        }
    }

    async fn advance(&mut self, api: &Api<'_, P>) -> Result<SnapshotRecord<P::Json>, Error<P>> {
        loop {
            if let Some(delay) = self.next_delay_ms {
                let left = self.deadline_ms - api.p.now_ms();
                if left <= 0.0 {
                    return Err(self.timeout_error());
                }
                api.p
                    .sleep(delay.min(left))
                    .await
                    .map_err(|_| Error::Aborted)?;
            }
            self.next_delay_ms = Some(self.spec.poll_interval_ms);
            let budget = Budget {
                deadline_ms: self.deadline_ms.max(api.p.now_ms() + MIN_ATTEMPT_MS),
                max_retries: 0,
            };
            match api.get_snapshot(&self.spec.snapshot_id, budget).await {
                Ok((record, trace_id)) => {
                    self.last_trace = trace_id;
                    self.last_error = None;
                    let status = record.status.as_string().unwrap_or_default();
                    let changed = self.last_status.as_deref() != Some(status.as_str());
                    self.last_status = Some(status.clone());
                    let verdict = judge(&status, self.spec.until);
                    let failure = match verdict {
                        Verdict::Reached => {
                            self.done = true;
                            return Ok(record);
                        }
                        Verdict::Pending if changed => return Ok(record),
                        Verdict::Pending => continue,
                        Verdict::Failed => self.failed_error(&record),
                        Verdict::Deleting => Error::Sandbox {
                            message: format!("Snapshot {} is being deleted", self.spec.snapshot_id),
                            code: "SNAPSHOT_DELETING",
                            sandbox_id: None,
                            trace_id: Some(self.last_trace.clone()),
                        },
                    };
                    if changed {
                        self.pending = Some(failure);
                        return Ok(record);
                    }
                    return Err(failure);
                }
                Err(err) if err.is_retryable() => {
                    if let Some(wait) = err.retry_after_ms() {
                        self.next_delay_ms = Some(wait.max(self.spec.poll_interval_ms));
                    }
                    self.last_trace = err.trace_id().unwrap_or_default().to_string();
                    self.last_error = Some(err.message());
                }
                Err(err) => return Err(err),
            }
        }
    }

    fn failed_error(&self, record: &SnapshotRecord<P::Json>) -> Error<P> {
        Error::SnapshotFailed {
            snapshot: Box::new(record.clone()),
            snapshot_id: self.spec.snapshot_id.clone(),
            server_message: record.error.as_ref().and_then(Json::as_string),
            trace_id: self.last_trace.clone(),
        }
    }

    fn timeout_error(&self) -> Error<P> {
        Error::WaitTimeout {
            snapshot_id: self.spec.snapshot_id.clone(),
            wait_until: self.spec.until.as_str(),
            last_status: self.last_status.clone(),
            timeout_s: self.spec.timeout_s,
            trace_id: self.last_trace.clone(),
            last_error: self.last_error.clone(),
        }
    }
}

/// Waits to the end, calling `on_change` once per status change (including the last). An error
/// returned by `on_change` ends the wait with that error.
pub async fn wait_for<P: Platform>(
    api: &Api<'_, P>,
    waiter: &mut Waiter<P>,
    mut on_change: impl FnMut(&SnapshotRecord<P::Json>) -> Result<(), Error<P>>,
) -> Result<SnapshotRecord<P::Json>, Error<P>> {
    loop {
        match waiter.next_change(api).await? {
            Some(record) => {
                on_change(&record)?;
                if waiter.is_done() {
                    return Ok(record);
                }
            }
            None => {
                return Err(Error::Sandbox {
                    message: "the wait had already ended".into(),
                    code: "WAIT_ENDED",
                    sandbox_id: None,
                    trace_id: None,
                })
            }
        }
    }
}

#[cfg(test)]
#[path = "wait_tests.rs"]
mod tests;
