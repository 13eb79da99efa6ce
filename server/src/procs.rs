//! Processes run in sandboxes: the per-sandbox process table behind `GET /api/v1/processes`, and
//! the supervisor that streams a process's output, enforces its timeout and records how it ended.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::process::ExitStatus;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use serde_json::{json, Value};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::{mpsc, Notify};

use crate::model::now_ms;

/// Lines kept per process for the output endpoints.
const KEPT_LINES: usize = 10_000;
/// Longest line sent as one event; longer output is split.
const MAX_LINE: usize = 64 * 1024;
/// Finished processes remembered per sandbox.
const KEPT_FINISHED: usize = 200;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// Why the server killed a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KillReason {
    /// Its `timeout` expired.
    Timeout,
    /// A client asked (DELETE or signal), with this signal number.
    Requested(i32),
    /// Its sandbox was terminated or suspended, or the server is stopping.
    Shutdown,
    /// The client reading its `run` stream went away.
    Disconnected,
}

/// How a process ended.
#[derive(Debug, Clone, Copy)]
pub enum Ending {
    /// Exit code.
    Exited(i32),
    /// Killed by a signal, and whether it was the timeout.
    Signaled(i32, bool),
}

/// Mutable part of a process entry.
#[derive(Debug, Default)]
struct ProcState {
    ending: Option<Ending>,
    ended_at: Option<i64>,
    lines: VecDeque<(Stream, String)>,
    kill: Option<KillReason>,
}

/// One process.
#[derive(Debug)]
pub struct ProcEntry {
    /// Sandbox-local process id (not a host pid).
    pub pid: u32,
    /// Program.
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Start instant.
    pub started_at: i64,
    state: Mutex<ProcState>,
    kill: Notify,
    finished: Notify,
}

impl ProcEntry {
    fn state(&self) -> std::sync::MutexGuard<'_, ProcState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether it is still running.
    pub fn running(&self) -> bool {
        self.state().ending.is_none()
    }

    /// Asks the supervisor to kill it (the whole jail: bwrap's PID namespace dies with it).
    pub fn kill(&self, reason: KillReason) {
        let mut st = self.state();
        if st.ending.is_none() {
            st.kill.get_or_insert(reason);
            drop(st);
            self.kill.notify_one();
        }
    }

    /// Waits until it has ended.
    pub async fn wait(&self) {
        loop {
            let notified = self.finished.notified();
            if !self.running() {
                return;
            }
            notified.await;
        }
    }

    /// ProcessInfo JSON (wire-protocol.md section 5.3).
    pub fn info(&self) -> Value {
        let st = self.state();
        let (status, exit_code, signal) = match st.ending {
            None => ("running", Value::Null, Value::Null),
            Some(Ending::Exited(c)) => ("exited", json!(c), Value::Null),
            Some(Ending::Signaled(s, _)) => ("signaled", Value::Null, json!(s)),
        };
        json!({
            "pid": self.pid,
            "status": status,
            "exit_code": exit_code,
            "signal": signal,
            "stdin_writable": false,
            "command": self.command,
            "args": self.args,
            "started_at": self.started_at,
            "ended_at": st.ended_at,
        })
    }

    /// Output lines kept, optionally of one stream only.
    pub fn lines(&self, only: Option<Stream>) -> Vec<String> {
        self.state()
            .lines
            .iter()
            .filter(|(s, _)| only.map_or(true, |o| o == *s))
            .map(|(_, l)| l.clone())
            .collect()
    }
}

#[derive(Default)]
struct SandboxProcs {
    next_pid: u32,
    list: BTreeMap<u32, Arc<ProcEntry>>,
}

/// All process tables.
#[derive(Default)]
pub struct Procs {
    inner: Mutex<HashMap<String, SandboxProcs>>,
}

impl Procs {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, SandboxProcs>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Registers a new process of `sandbox` and returns its entry.
    pub fn register(&self, sandbox: &str, command: &str, args: &[String]) -> Arc<ProcEntry> {
        let mut all = self.lock();
        let table = all.entry(sandbox.to_string()).or_default();
        table.next_pid += 1;
        let entry = Arc::new(ProcEntry {
            pid: table.next_pid,
            command: command.to_string(),
            args: args.to_vec(),
            started_at: now_ms(),
            state: Mutex::new(ProcState::default()),
            kill: Notify::new(),
            finished: Notify::new(),
        });
        table.list.insert(entry.pid, entry.clone());
        // Forget the oldest finished processes beyond the limit.
        let finished: Vec<u32> = table
            .list
            .iter()
            .filter(|(_, e)| !e.running())
            .map(|(p, _)| *p)
            .collect();
        if finished.len() > KEPT_FINISHED {
            for pid in &finished[..finished.len() - KEPT_FINISHED] {
                table.list.remove(pid);
            }
        }
        entry
    }

    /// Removes an entry whose process could not be started.
    pub fn unregister(&self, sandbox: &str, pid: u32) {
        if let Some(t) = self.lock().get_mut(sandbox) {
            t.list.remove(&pid);
        }
    }

    /// The processes of `sandbox`, oldest first.
    pub fn list(&self, sandbox: &str) -> Vec<Arc<ProcEntry>> {
        self.lock()
            .get(sandbox)
            .map(|t| t.list.values().cloned().collect())
            .unwrap_or_default()
    }

    /// One process of `sandbox`.
    pub fn get(&self, sandbox: &str, pid: u32) -> Option<Arc<ProcEntry>> {
        self.lock()
            .get(sandbox)
            .and_then(|t| t.list.get(&pid).cloned())
    }

    /// Kills every process of `sandbox` and waits (up to 5 s) for them to end.
    pub async fn stop_all(&self, sandbox: &str) {
        let running: Vec<_> = self
            .list(sandbox)
            .into_iter()
            .filter(|e| e.running())
            .collect();
        for e in &running {
            e.kill(KillReason::Shutdown);
        }
        let _ = tokio::time::timeout(Duration::from_secs(5), async {
            for e in &running {
                e.wait().await;
            }
        })
        .await;
    }

    /// Forgets the table of `sandbox` (after it was terminated).
    pub fn forget(&self, sandbox: &str) {
        self.lock().remove(sandbox);
    }

    /// Kills every process of every sandbox (server shutdown).
    pub fn kill_everything(&self) {
        for table in self.lock().values() {
            for e in table.list.values() {
                e.kill(KillReason::Shutdown);
            }
        }
    }
}

/// One SSE frame: `data: <json>\n\n`.
pub fn sse_frame(v: &Value) -> Bytes {
    let mut s = String::with_capacity(64);
    s.push_str("data: ");
    s.push_str(&v.to_string());
    s.push_str("\n\n");
    Bytes::from(s)
}

/// The exit event of section 5.2 (`exit_code` or `signal`, plus WHL's `reason`).
pub fn exit_event(ending: Ending) -> Value {
    match ending {
        Ending::Exited(c) => json!({ "exit_code": c, "reason": "exited" }),
        Ending::Signaled(s, true) => json!({ "signal": s, "reason": "timed_out" }),
        Ending::Signaled(s, false) => json!({ "signal": s, "reason": "signaled" }),
    }
}

/// Supervises a started child until it has ended and its pipes are drained: forwards each
/// output line to `events` (the `run` stream) while anyone reads it, keeps lines for the output
/// endpoints, kills it on timeout or request, and sends the exit event last.
pub async fn supervise(
    entry: Arc<ProcEntry>,
    mut child: tokio::process::Child,
    timeout: Option<Duration>,
    mut events: Option<mpsc::Sender<Bytes>>,
) {
    let (line_tx, mut line_rx) = mpsc::channel::<(Stream, String)>(256);
    if let Some(out) = child.stdout.take() {
        tokio::spawn(read_lines(out, Stream::Stdout, line_tx.clone()));
    }
    if let Some(err) = child.stderr.take() {
        tokio::spawn(read_lines(err, Stream::Stderr, line_tx.clone()));
    }
    drop(line_tx);

    let deadline = timeout.map(|t| tokio::time::Instant::now() + t);
    let mut status: Option<std::io::Result<ExitStatus>> = None;
    let mut lines_open = true;
    let mut killing = false;
    loop {
        if status.is_some() && !lines_open {
            break;
        }
        tokio::select! {
            line = line_rx.recv(), if lines_open => match line {
                Some((stream, text)) => {
                    if let Some(tx) = &events {
                        let frame = sse_frame(&json!({ "line": text, "timestamp": now_ms(), "stream": stream.as_str() }));
                        if tx.send(frame).await.is_err() {
                            // Nobody reads the stream any more: a `run` has no other consumer.
                            events = None;
                            entry.kill(KillReason::Disconnected);
                        }
                    }
                    let mut st = entry.state();
                    if st.lines.len() == KEPT_LINES {
                        st.lines.pop_front();
                    }
                    st.lines.push_back((stream, text));
                }
                None => lines_open = false,
            },
            s = child.wait(), if status.is_none() => status = Some(s),
            _ = entry.kill.notified(), if status.is_none() && !killing => {
                killing = true;
                let _ = child.start_kill();
            }
            _ = sleep_until(deadline), if status.is_none() && !killing => {
                entry.state().kill.get_or_insert(KillReason::Timeout);
                killing = true;
                let _ = child.start_kill();
            }
        }
    }

    let reason = entry.state().kill;
    let ending = match (reason, status) {
        (Some(KillReason::Timeout), _) => Ending::Signaled(libc::SIGKILL, true),
        (Some(KillReason::Requested(sig)), _) => Ending::Signaled(sig, false),
        (Some(_), _) => Ending::Signaled(libc::SIGKILL, false),
        (None, Some(Ok(st))) => match (
            st.code(),
            std::os::unix::process::ExitStatusExt::signal(&st),
        ) {
            (Some(c), _) => Ending::Exited(c),
            (None, Some(s)) => Ending::Signaled(s, false),
            (None, None) => Ending::Exited(-1),
        },
        (None, _) => Ending::Exited(-1),
    };
    {
        let mut st = entry.state();
        st.ending = Some(ending);
        st.ended_at = Some(now_ms());
    }
    entry.finished.notify_waiters();
    if let Some(tx) = events {
        let _ = tx.send(sse_frame(&exit_event(ending))).await;
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Splits a pipe into lines (without `\n`, and without a trailing `\r`), cutting lines longer
/// than [`MAX_LINE`] so output without newlines cannot grow memory without bound.
async fn read_lines<R: AsyncRead + Unpin>(
    mut r: R,
    stream: Stream,
    tx: mpsc::Sender<(Stream, String)>,
) {
    let mut buf: Vec<u8> = Vec::with_capacity(8192);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let n = match r.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        buf.extend_from_slice(&chunk[..n]);
        let mut start = 0;
        while let Some(i) = buf[start..].iter().position(|&b| b == b'\n') {
            let end = start + i;
            if tx.send((stream, to_line(&buf[start..end]))).await.is_err() {
                return;
            }
            start = end + 1;
        }
        buf.drain(..start);
        while buf.len() >= MAX_LINE {
            let rest = buf.split_off(MAX_LINE);
            if tx.send((stream, to_line(&buf))).await.is_err() {
                return;
            }
            buf = rest;
        }
    }
    if !buf.is_empty() {
        let _ = tx.send((stream, to_line(&buf))).await;
    }
}

fn to_line(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}
