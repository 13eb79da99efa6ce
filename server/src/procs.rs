//! Processes run in sandboxes: the per-sandbox process table behind `GET /api/v1/processes`, and
//! the supervisor that streams a process's output, enforces its timeout and records how it ended.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use axum::body::Bytes;
use serde_json::{json, Value};
use tokio::sync::{broadcast, Notify};

use crate::model::now_ms;
pub use crate::proc_output::Stream;
use crate::proc_output::{Kept, SANDBOX_BUDGET};
use crate::proc_signal;

/// Lines a follower may fall behind the process before it misses some (see `follow`): the live
/// feed is bounded, so a slow follower never grows the server.
pub const FOLLOW_QUEUE: usize = 64;

/// What a follower starts from: the kept lines (stream, instant, text), and the live feed of
/// the lines after them (`None` once the process has ended).
pub type Followed = (
    Vec<(Stream, i64, String)>,
    Option<broadcast::Receiver<LineEvent>>,
);

/// One output line as followers get it.
#[derive(Debug, Clone)]
pub struct LineEvent {
    /// Which pipe.
    pub stream: Stream,
    /// When it was read (epoch ms).
    pub at: i64,
    /// The text.
    pub line: Arc<str>,
}

/// Finished processes remembered per sandbox; older ones are forgotten first.
const KEPT_FINISHED: usize = 200;

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

pub use crate::proc_supervise::supervise;

/// Mutable part of a process entry.
#[derive(Debug, Default)]
pub(crate) struct ProcState {
    pub(crate) ending: Option<Ending>,
    pub(crate) ended_at: Option<i64>,
    lines: Kept,
    pub(crate) kill: Option<KillReason>,
    /// The last signal the server delivered to the command itself (see `proc_signal`).
    pub(crate) delivered: Option<i32>,
    /// Live feed of new lines for followers; `None` once the process has ended.
    pub(crate) live: Option<broadcast::Sender<LineEvent>>,
}

/// One process.
#[derive(Debug)]
pub struct ProcEntry {
    /// Sandbox-local process id (not a host pid).
    pub pid: u32,
    /// The name it was started with, to be found by instead of its pid.
    pub name: Option<String>,
    /// Program.
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Start instant.
    pub started_at: i64,
    /// Host pid of the jail's outer bwrap (what the server spawned).
    pub host_pid: i32,
    /// The command's stdin pipe while it is open (`stdin_mode: "pipe"`).
    pub stdin: tokio::sync::Mutex<Option<tokio::process::ChildStdin>>,
    pub(crate) stdin_open: AtomicBool,
    state: Mutex<ProcState>,
    pub(crate) kill: Notify,
    pub(crate) finished: Notify,
    /// The sandbox's table, for its output budget (weak: the table owns its entries).
    table: Weak<Table>,
}

impl ProcEntry {
    pub(crate) fn state(&self) -> std::sync::MutexGuard<'_, ProcState> {
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

    /// Delivers `sig` to the command itself (not the jail). Waits up to `wait` for a command
    /// that is still starting; false when it could not be found. Blocking.
    pub fn deliver(&self, sig: i32, wait: Duration) -> bool {
        if !self.running() {
            return false;
        }
        match proc_signal::wait_for_command(self.host_pid, wait) {
            Some(pid) => {
                self.state().delivered = Some(sig);
                proc_signal::send(pid, sig)
            }
            None => false,
        }
    }

    /// Closes its stdin (EOF for the command); false when it was not open.
    pub async fn close_stdin(&self) -> bool {
        let was = self.stdin.lock().await.take().is_some();
        self.stdin_open.store(false, Ordering::Release);
        was
    }

    /// The kept lines (one stream or both) and a live feed of the lines after them, taken
    /// together so that no line is missed or repeated; no feed once the process has ended.
    pub fn follow(&self, only: Option<Stream>) -> Followed {
        let st = self.state();
        (
            st.lines.events(only),
            st.live.as_ref().map(|l| l.subscribe()),
        )
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
            "stdin_writable": st.ending.is_none() && self.stdin_open.load(Ordering::Acquire),
            "command": self.command,
            "args": self.args,
            "started_at": self.started_at,
            "ended_at": st.ended_at,
            "name": self.name,
        })
    }

    /// Output lines kept, optionally of one stream only.
    pub fn lines(&self, only: Option<Stream>) -> Vec<String> {
        self.state().lines.lines(only)
    }

    /// Keeps an output line within the process's and then the sandbox's budget.
    pub(crate) fn keep(&self, stream: Stream, line: String) {
        let table = self.table.upgrade();
        {
            // Accounted under the entry's lock, before a concurrent trim can drop the line.
            let mut st = self.state();
            let at = now_ms();
            if let Some(live) = &st.live {
                // No receiver is not an error: nobody follows.
                let _ = live.send(LineEvent {
                    stream,
                    at,
                    line: Arc::from(line.as_str()),
                });
            }
            let (added, dropped) = st.lines.push_at(stream, at, line);
            if let Some(t) = &table {
                t.kept.fetch_add(added, Ordering::AcqRel);
                t.kept.fetch_sub(dropped, Ordering::AcqRel);
            }
        }
        if let Some(t) = table {
            if t.kept.load(Ordering::Acquire) > SANDBOX_BUDGET {
                t.trim();
            }
        }
    }
}

/// The processes of one sandbox.
#[derive(Default)]
struct Table {
    list: Mutex<TableList>,
    /// Cost of the output kept by all its processes (see `proc_output`).
    kept: AtomicUsize,
}

#[derive(Default)]
struct TableList {
    next_pid: u32,
    entries: BTreeMap<u32, Arc<ProcEntry>>,
}

impl Table {
    /// Lock order: a table's list, then an entry's state; never the other way round.
    fn list(&self) -> std::sync::MutexGuard<'_, TableList> {
        self.list.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the oldest lines of the oldest processes until the sandbox is within its budget.
    fn trim(&self) {
        let list = self.list();
        for entry in list.entries.values() {
            let mut st = entry.state();
            while self.kept.load(Ordering::Acquire) > SANDBOX_BUDGET {
                match st.lines.pop_oldest() {
                    Some(c) => {
                        self.kept.fetch_sub(c, Ordering::AcqRel);
                    }
                    None => break,
                }
            }
            if self.kept.load(Ordering::Acquire) <= SANDBOX_BUDGET {
                return;
            }
        }
    }

    /// Removes an entry and its output from the account.
    fn remove(&self, list: &mut TableList, pid: u32) {
        if let Some(e) = list.entries.remove(&pid) {
            self.kept
                .fetch_sub(e.state().lines.total(), Ordering::AcqRel);
        }
    }
}

/// All process tables.
#[derive(Default)]
pub struct Procs {
    inner: Mutex<HashMap<String, Arc<Table>>>,
}

impl Procs {
    fn table(&self, sandbox: &str) -> Option<Arc<Table>> {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(sandbox)
            .cloned()
    }

    /// Registers a new process of `sandbox` and returns its entry.
    pub fn register(
        &self,
        sandbox: &str,
        command: &str,
        args: &[String],
        host_pid: i32,
        stdin: Option<tokio::process::ChildStdin>,
        name: Option<String>,
    ) -> Arc<ProcEntry> {
        let table = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(sandbox.to_string())
            .or_default()
            .clone();
        let mut list = table.list();
        list.next_pid += 1;
        let entry = Arc::new(ProcEntry {
            pid: list.next_pid,
            name,
            command: command.to_string(),
            args: args.to_vec(),
            started_at: now_ms(),
            host_pid,
            stdin_open: AtomicBool::new(stdin.is_some()),
            stdin: tokio::sync::Mutex::new(stdin),
            state: Mutex::new(ProcState {
                live: Some(broadcast::channel(FOLLOW_QUEUE).0),
                ..ProcState::default()
            }),
            kill: Notify::new(),
            finished: Notify::new(),
            table: Arc::downgrade(&table),
        });
        list.entries.insert(entry.pid, entry.clone());
        // Forget the oldest finished processes beyond the limit.
        let finished: Vec<u32> = list
            .entries
            .iter()
            .filter(|(_, e)| !e.running())
            .map(|(p, _)| *p)
            .collect();
        if let Some(excess) = finished.len().checked_sub(KEPT_FINISHED) {
            for pid in finished.into_iter().take(excess) {
                table.remove(&mut list, pid);
            }
        }
        entry
    }

    /// The processes of `sandbox`, oldest first.
    pub fn list(&self, sandbox: &str) -> Vec<Arc<ProcEntry>> {
        self.table(sandbox)
            .map(|t| t.list().entries.values().cloned().collect())
            .unwrap_or_default()
    }

    /// One process of `sandbox`.
    pub fn get(&self, sandbox: &str, pid: u32) -> Option<Arc<ProcEntry>> {
        self.table(sandbox)
            .and_then(|t| t.list().entries.get(&pid).cloned())
    }

    /// The newest process of `sandbox` started with `name`.
    pub fn by_name(&self, sandbox: &str, name: &str) -> Option<Arc<ProcEntry>> {
        self.table(sandbox).and_then(|t| {
            t.list()
                .entries
                .values()
                .rev()
                .find(|e| e.name.as_deref() == Some(name))
                .cloned()
        })
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

    /// Stops (SIGSTOP) or continues (SIGCONT) every running process tree of `sandbox`: suspend
    /// where there is no cgroup freezer. Blocking.
    pub fn stop_trees(&self, sandbox: &str, stop: bool) {
        for e in self.list(sandbox).iter().filter(|e| e.running()) {
            if e.host_pid > 0 {
                proc_signal::stop_tree(e.host_pid, stop);
            }
        }
    }

    /// Forgets the table of `sandbox` (after it was terminated).
    pub fn forget(&self, sandbox: &str) {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(sandbox);
    }

    /// Kills every process of every sandbox (server shutdown).
    pub fn kill_everything(&self) {
        let tables: Vec<Arc<Table>> = self
            .inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect();
        for table in tables {
            for e in table.list().entries.values() {
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
