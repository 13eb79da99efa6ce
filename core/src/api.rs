//! The API operations: snapshots, sandboxes, and a sandbox's own processes and files. Each one is
//! a request built by `routes`, sent by `call` and decoded by `models`, with the few places that
//! need judgement (an ambiguous snapshot request, sandbox start-up) spelled out here.

use crate::config::Config;
use crate::error::{ConnectionError, Error, NotFound};
use crate::call::{self, Budget, Call, Reply};
use crate::outcome::{is_ambiguous, outcome_unknown, COMMAND_RAN_NOTE, SANDBOX_CREATED_NOTE};
use crate::models::{self, DirEntry, SandboxRecord, SnapshotCreated, SnapshotRecord};
use crate::platform::{Expect, Json, Method, Platform, RequestBody};
use crate::retry::RetryClass;
use crate::routes::{self, RunSpec, SandboxSpec};
use crate::sse::{self, CommandOutput};

/// How far a remote server's clock may trail ours when looking for a snapshot our failed request
/// may have created. Cloud hosts are NTP-synchronised to well under this, and two snapshots of
/// one sandbox are never this close together (a sandbox cannot be snapshotted while it is
/// snapshotting, and a snapshot takes seconds).
pub const REMOTE_CLOCK_SKEW_MS: f64 = 2_000.0;
/// The same for a server on this machine: one clock, so only millisecond rounding.
pub const LOCAL_CLOCK_SKEW_MS: f64 = 5.0;
/// How often `create_and_connect` checks on a starting sandbox (the official SDKs use 0.5 s).
pub const STARTUP_POLL_MS: f64 = 500.0;
/// Extra time a command's request gets beyond the command's own timeout, for the stream's tail.
pub const RUN_GRACE_MS: f64 = 30_000.0;

/// Where a sandbox's own API is, and which sandbox to ask for.
#[derive(Debug, Clone, PartialEq)]
pub struct SandboxTarget {
    /// The sandbox id, sent as `X-Tensorlake-Sandbox-Id`.
    pub sandbox_id: String,
    /// Base URL of its API (see [`routes::sandbox_api_base`]).
    pub base: String,
}

/// The operations, bound to a host and a configuration.
pub struct Api<'a, P: Platform> {
    /// The host.
    pub p: &'a P,
    /// The client's configuration.
    pub cfg: &'a Config,
    /// When the whole call must be over (epoch ms), if the caller set a limit such as a wait's
    /// `timeout`: every request of the call then ends by it, give or take one
    /// [`call::MIN_ATTEMPT_MS`] for a request that starts right at the deadline.
    pub deadline_ms: Option<f64>,
}

impl<'a, P: Platform> Api<'a, P> {
    /// Binds the operations.
    pub fn new(p: &'a P, cfg: &'a Config) -> Self {
        Api { p, cfg, deadline_ms: None }
    }

    /// The same operations, each request bounded by `deadline_ms` as well.
    pub fn until(self, deadline_ms: f64) -> Self {
        Api { deadline_ms: Some(deadline_ms), ..self }
    }

    fn budget(&self) -> Budget {
        let mut budget = Budget::standard(self.p, self.cfg);
        if let Some(deadline) = self.deadline_ms {
            budget.deadline_ms = budget.deadline_ms.min(deadline);
        }
        budget
    }

    async fn json(
        &self,
        call: &Call,
        budget: Budget,
    ) -> Result<(P::Json, Reply<P::Body>), Error<P>> {
        let reply = call::send(self.p, self.cfg, call, budget).await?;
        let json = call::json(&reply)?;
        Ok((json, reply))
    }

    /// `GET {P}/snapshots/{id}`, with the trace id of the request that answered.
    pub async fn get_snapshot(
        &self,
        snapshot_id: &str,
        budget: Budget,
    ) -> Result<(SnapshotRecord<P::Json>, String), Error<P>> {
        let mut call = Call::new(
            Method::Get,
            routes::snapshot(self.cfg, snapshot_id),
            RetryClass::Idempotent,
        );
        call.not_found = Some(NotFound::Snapshot(snapshot_id.to_string()));
        let (json, reply) = self.json(&call, budget).await?;
        let record = models::snapshot(&json).map_err(|why| call::invalid(&reply, &why))?;
        Ok((record, reply.trace_id))
    }

    /// `GET {P}/snapshots`, or one sandbox's: `GET {P}/sandboxes/{id}/snapshots`, as the Python
    /// SDK lists them, and where a server lacks that route (404 or 405) the namespace's list
    /// filtered here.
    pub async fn list_snapshots(
        &self,
        sandbox_id: Option<&str>,
    ) -> Result<Vec<SnapshotRecord<P::Json>>, Error<P>> {
        let mut own_route = sandbox_id.is_some();
        let (json, reply) = loop {
            let url = match sandbox_id {
                Some(id) if own_route => crate::processes::sandbox_action(self.cfg, id, "snapshots"),
                _ => routes::snapshots(self.cfg),
            };
            let call = Call::new(Method::Get, url, RetryClass::Idempotent);
            match self.json(&call, self.budget()).await {
                Err(Error::Api(api)) if own_route && matches!(api.status, 404 | 405) => own_route = false,
                answer => break answer?,
            }
        };
        let mut list = models::snapshot_list(&json).map_err(|why| call::invalid(&reply, &why))?;
        if let Some(wanted) = sandbox_id {
            // A record of the sandbox's own list that does not name its sandbox is kept.
            list.retain(|s| match s.sandbox_id.as_ref().and_then(Json::as_string) {
                Some(id) => id == wanted,
                None => own_route,
            });
        }
        Ok(list)
    }

    /// `DELETE {P}/snapshots/{id}`.
    pub async fn delete_snapshot(&self, snapshot_id: &str) -> Result<(), Error<P>> {
        let call = Call::delete(
            routes::snapshot(self.cfg, snapshot_id),
            NotFound::Snapshot(snapshot_id.to_string()),
        );
        call::send(self.p, self.cfg, &call, self.budget())
            .await
            .map(|_| ())
    }

    /// `POST {P}/sandboxes/{id}/snapshot`. Never sent twice: if the request fails in a way that
    /// leaves its outcome unknown (timeout, lost connection, 5xx, unreadable success), the
    /// snapshots are listed and one of this sandbox created since the call began is returned
    /// instead of creating a duplicate. If there is none, the error says the outcome is unknown.
    pub async fn create_snapshot(
        &self,
        sandbox_id: &str,
        snapshot_type: Option<&str>,
    ) -> Result<SnapshotCreated<P::Json>, Error<P>> {
        let started_ms = self.p.now_ms();
        let mut call = Call::new(
            Method::Post,
            routes::create_snapshot(self.cfg, sandbox_id),
            RetryClass::Create,
        );
        call.not_found = Some(NotFound::Sandbox(sandbox_id.to_string()));
        if let Some(body) = routes::create_snapshot_body(snapshot_type) {
            call.body = RequestBody::Json(body);
        }
        let failure = match self.json(&call, self.budget()).await {
            Ok((json, reply)) => match models::snapshot_created(&json) {
                Ok(created) => return Ok(created),
                Err(why) => call::invalid(&reply, &why),
            },
            Err(err) => err,
        };
        if !is_ambiguous(&failure) {
            return Err(failure);
        }
        let skew = if self.cfg.is_local { LOCAL_CLOCK_SKEW_MS } else { REMOTE_CLOCK_SKEW_MS };
        match self.find_snapshot_since(sandbox_id, started_ms - skew, skew).await {
            Ok(Some(found)) => Ok(SnapshotCreated { snapshot_id: found.snapshot_id, status: found.status }),
            Ok(None) => Err(outcome_unknown(
                failure,
                format!(
                    "outcome unknown: the snapshot request may or may not have been applied, and no snapshot of \
                     sandbox {sandbox_id} created since the call began was found; check listSnapshots() before retrying"
                ),
            )),
            Err(Error::Aborted) => Err(Error::Aborted),
            Err(check) => Err(outcome_unknown(
                failure,
                format!(
                    "outcome unknown: the snapshot request may or may not have been applied, and checking for it failed \
                     too ({}); check listSnapshots() before retrying",
                    check.message()
                ),
            )),
        }
    }

    /// The newest snapshot of `sandbox_id` created between `since_ms` and now (plus `skew_ms`).
    /// The upper bound matters when the server's clock is ahead of ours: an older snapshot's
    /// created_at can then fall after the call began, but not also before now, unless its age
    /// about equals the clock difference. Outside the window the outcome is "unknown", never
    /// another snapshot.
    async fn find_snapshot_since(
        &self,
        sandbox_id: &str,
        since_ms: f64,
        skew_ms: f64,
    ) -> Result<Option<SnapshotRecord<P::Json>>, Error<P>> {
        let candidates = self.list_snapshots(Some(sandbox_id)).await?;
        let until_ms = self.p.now_ms() + skew_ms;
        Ok(candidates
            .into_iter()
            .filter(|s| s.created_at_ms.is_some_and(|t| t >= since_ms && t <= until_ms))
            .max_by(|a, b| {
                a.created_at_ms
                    .unwrap_or(0.0)
                    .total_cmp(&b.created_at_ms.unwrap_or(0.0))
            }))
    }

    /// `POST {P}/sandboxes` (create, or restore when `spec.snapshot_id` is set). Returns whatever
    /// state the server reports; see [`Api::start_sandbox`] to wait for `running`.
    pub async fn create_sandbox(
        &self,
        spec: &SandboxSpec,
    ) -> Result<SandboxRecord<P::Json>, Error<P>> {
        let mut call = Call::new(
            Method::Post,
            routes::sandboxes(self.cfg),
            RetryClass::Create,
        );
        call.body = RequestBody::Json(routes::create_sandbox_body(spec));
        call.not_found = spec.snapshot_id.clone().map(NotFound::Snapshot);
        let reply = match call::send(self.p, self.cfg, &call, self.budget()).await {
            Ok(reply) => reply,
            // The cloud answers a create that outlived its start-up budget with 504 and the
            // sandbox as JSON (wire-protocol §3.1); that is an answer, not a lost request.
            Err(Error::Api(api)) if api.status == 504 => return Err(self.create_timeout(*api)),
            Err(err) if is_ambiguous(&err) => {
                return Err(outcome_unknown(
                    err,
                    "outcome unknown: the sandbox may or may not have been created; check listSandboxes() before retrying"
                        .into(),
                ))
            }
            Err(err) => return Err(err),
        };
        let json = call::json(&reply).map_err(|err| outcome_unknown(err, SANDBOX_CREATED_NOTE.into()))?;
        models::sandbox(&json).map_err(|why| outcome_unknown(call::invalid(&reply, &why), SANDBOX_CREATED_NOTE.into()))
    }

    fn create_timeout(&self, api: crate::error::ApiError) -> Error<P> {
        Error::Sandbox {
            message: format!(
                "The sandbox did not start in time (the server answered 504: {})",
                api.response_message
            ),
            code: "SANDBOX_START_TIMEOUT",
            sandbox_id: None,
            trace_id: Some(api.trace_id),
        }
    }

    /// Creates a sandbox and waits until it is `running`, as `createAndConnect` does. A sandbox
    /// that terminates during start-up is an error naming the server's reason; one still not
    /// running at the deadline is deleted (nobody holds a handle to it) and reported.
    pub async fn start_sandbox(
        &self,
        spec: &SandboxSpec,
        startup_timeout_ms: f64,
        created: &mut Option<String>,
    ) -> Result<SandboxRecord<P::Json>, Error<P>> {
        let deadline = self.p.now_ms() + startup_timeout_ms;
        let api = Api { deadline_ms: Some(self.deadline_ms.map_or(deadline, |d| d.min(deadline))), ..*self };
        let mut record = api.create_sandbox(spec).await?;
        let sandbox_id = record.sandbox_id.as_string().unwrap_or_default();
        // For the caller: an abort while waiting rejects with the signal's reason alone, and the
        // host deletes the sandbox it would otherwise leave running without a handle.
        *created = Some(sandbox_id.clone());
        loop {
            let status = record.status.as_string().unwrap_or_default();
            match status.as_str() {
                "running" => return Ok(record),
                "terminated" | "suspended" | "failed" | "timeout" => {
                    let detail = models::termination_detail(&record)
                        .map(|d| format!(": {d}"))
                        .unwrap_or_default();
                    if status == "timeout" {
                        let _ = api.delete_sandbox(&sandbox_id).await;
                    }
                    return Err(Error::Sandbox {
                        message: format!(
                            "Sandbox {sandbox_id} became {status} during startup{detail}"
                        ),
                        code: "SANDBOX_TERMINATED",
                        sandbox_id: Some(sandbox_id),
                        trace_id: None,
                    });
                }
                _ => {}
            }
            let left = deadline - self.p.now_ms();
            if left <= 0.0 {
                let _ = api.delete_sandbox(&sandbox_id).await;
                return Err(Error::Sandbox {
                    message: format!(
                        "Sandbox {sandbox_id} did not start within {}s (last status {status}); it was deleted",
                        crate::decimal::format_decimal(startup_timeout_ms / 1000.0)
                    ),
                    code: "SANDBOX_START_TIMEOUT",
                    sandbox_id: Some(sandbox_id),
                    trace_id: None,
                });
            }
            if self.p.sleep(STARTUP_POLL_MS.min(left)).await.is_err() {
                return Err(Error::Aborted);
            }
            record = api.get_sandbox(&sandbox_id).await?;
        }
    }

    /// `GET {P}/sandboxes/{id}`.
    pub async fn get_sandbox(&self, sandbox_id: &str) -> Result<SandboxRecord<P::Json>, Error<P>> {
        let mut call = Call::new(
            Method::Get,
            routes::sandbox(self.cfg, sandbox_id),
            RetryClass::Idempotent,
        );
        call.not_found = Some(NotFound::Sandbox(sandbox_id.to_string()));
        let (json, reply) = self.json(&call, self.budget()).await?;
        models::sandbox(&json).map_err(|why| call::invalid(&reply, &why))
    }

    /// `GET {P}/sandboxes`.
    pub async fn list_sandboxes(&self) -> Result<Vec<SandboxRecord<P::Json>>, Error<P>> {
        let call = Call::new(
            Method::Get,
            routes::sandboxes(self.cfg),
            RetryClass::Idempotent,
        );
        let (json, reply) = self.json(&call, self.budget()).await?;
        models::sandbox_list(&json).map_err(|why| call::invalid(&reply, &why))
    }

    /// `DELETE {P}/sandboxes/{id}` (terminate).
    pub async fn delete_sandbox(&self, sandbox_id: &str) -> Result<(), Error<P>> {
        let call = Call::delete(
            routes::sandbox(self.cfg, sandbox_id),
            NotFound::Sandbox(sandbox_id.to_string()),
        );
        call::send(self.p, self.cfg, &call, self.budget())
            .await
            .map(|_| ())
    }

    fn sandbox_call(
        &self,
        target: &SandboxTarget,
        method: Method,
        url: String,
        class: RetryClass,
    ) -> Call {
        let mut call = Call::new(method, url, class);
        call.sandbox_id = Some(target.sandbox_id.clone());
        call
    }

    /// `POST /api/v1/processes/run`, folded into exit code and output. Retried only on 429:
    /// running a command twice is not harmless.
    pub async fn run(
        &self,
        target: &SandboxTarget,
        spec: &RunSpec,
    ) -> Result<CommandOutput, Error<P>> {
        let mut call = self.sandbox_call(
            target,
            Method::Post,
            routes::process_run(&target.base),
            RetryClass::Create,
        );
        call.body = RequestBody::Json(routes::run_body(spec));
        call.accept = Some("text/event-stream");
        let mut budget = self.budget();
        if let Some(timeout_s) = spec.timeout_s {
            let needed = self.p.now_ms() + timeout_s * 1000.0 + RUN_GRACE_MS;
            budget.deadline_ms = budget.deadline_ms.max(needed);
        }
        let cfg = Config {
            request_timeout_ms: (budget.deadline_ms - self.p.now_ms())
                .max(self.cfg.request_timeout_ms),
            ..self.cfg.clone()
        };
        let reply = call::send(self.p, &cfg, &call, budget).await.map_err(|err| {
            if is_ambiguous(&err) {
                outcome_unknown(err, COMMAND_RAN_NOTE.into())
            } else {
                err
            }
        })?;
        let is_sse = reply
            .response
            .content_type
            .as_deref()
            .is_some_and(|t| crate::text::find(t, "text/event-stream").is_some());
        if !is_sse {
            return Err(outcome_unknown(
                call::invalid(&reply, "expected a text/event-stream response"),
                COMMAND_RAN_NOTE.into(),
            ));
        }
        sse::fold_run_stream(self.p, &crate::platform::Body::text(&reply.response.body)).map_err(
            |why| {
                Error::Connection(Box::new(ConnectionError {
                    message: why,
                    cause: None,
                    trace_id: reply.trace_id.clone(),
                    timed_out: false,
                    request: reply.describe(),
                    outcome_unknown: Some(COMMAND_RAN_NOTE.into()),
                    nothing_sent: false,
                }))
            },
        )
    }

    /// `GET /api/v1/files?path=`: the file's bytes, untouched.
    pub async fn read_file(&self, target: &SandboxTarget, path: &str) -> Result<P::Body, Error<P>> {
        let mut call = self.sandbox_call(
            target,
            Method::Get,
            routes::file(&target.base, path),
            RetryClass::Idempotent,
        );
        call.expect = Expect::Bytes;
        Ok(call::send(self.p, self.cfg, &call, self.budget())
            .await?
            .response
            .body)
    }

    /// `PUT /api/v1/files?path=` (parent directories are created). Idempotent: writing the same
    /// bytes twice leaves the same file.
    pub async fn write_file(
        &self,
        target: &SandboxTarget,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), Error<P>> {
        let mut call = self.sandbox_call(
            target,
            Method::Put,
            routes::file(&target.base, path),
            RetryClass::Idempotent,
        );
        call.body = RequestBody::Bytes(bytes);
        call::send(self.p, self.cfg, &call, self.budget())
            .await
            .map(|_| ())
    }

    /// `DELETE /api/v1/files?path=`.
    pub async fn delete_file(&self, target: &SandboxTarget, path: &str) -> Result<(), Error<P>> {
        let call = self.sandbox_call(
            target,
            Method::Delete,
            routes::file(&target.base, path),
            RetryClass::Idempotent,
        );
        call::send(self.p, self.cfg, &call, self.budget())
            .await
            .map(|_| ())
    }

    /// `GET /api/v1/files/list?path=`.
    pub async fn list_directory(
        &self,
        target: &SandboxTarget,
        path: &str,
    ) -> Result<Vec<DirEntry<P::Json>>, Error<P>> {
        let call = self.sandbox_call(
            target,
            Method::Get,
            routes::directory(&target.base, path),
            RetryClass::Idempotent,
        );
        let (json, reply) = self.json(&call, self.budget()).await?;
        models::directory(&json).map_err(|why| call::invalid(&reply, &why))
    }
}

#[cfg(test)]
#[path = "api_tests.rs"]
mod tests;
