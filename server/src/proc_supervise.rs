//! The supervisor of one process: streams its output, enforces its timeout, kills it on
//! request and records how it ended (split from `procs`, which holds the process table).

use std::process::ExitStatus;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use serde_json::json;
use tokio::sync::mpsc;

use crate::model::now_ms;
use crate::proc_output::{read_lines, Stream};
use crate::proc_signal;
use crate::procs::{exit_event, sse_frame, Ending, KillReason, ProcEntry};

/// Lines read from a process's pipes and not yet handled; small, since a line can be 192 KiB.
const LINE_QUEUE: usize = 32;

/// Supervises a started child until it has ended and its pipes are drained: forwards each
/// output line to `events` (the `run` stream) while anyone reads it, keeps lines for the output
/// endpoints, kills it on timeout or request, and sends the exit event last.
///
/// A `run` has no other consumer than its client, so the process is killed as soon as the
/// stream's receiver is gone, also while the process prints nothing: hyper drops the response
/// body when the client closes its connection (it watches a busy connection for EOF).
pub async fn supervise(
    entry: Arc<ProcEntry>,
    mut child: tokio::process::Child,
    timeout: Option<Duration>,
    mut events: Option<mpsc::Sender<Bytes>>,
) {
    let (line_tx, mut line_rx) = mpsc::channel::<(Stream, String)>(LINE_QUEUE);
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
    // A line frame waiting for room in the `run` stream. While one waits no more lines are read
    // (the process blocks on its pipe), but kills, timeouts and a disconnect are still handled.
    let mut pending: Option<Bytes> = None;
    loop {
        if status.is_some() && !lines_open {
            break;
        }
        tokio::select! {
            line = line_rx.recv(), if lines_open && pending.is_none() => match line {
                Some((stream, text)) => {
                    if events.is_some() {
                        pending = Some(sse_frame(&json!({ "line": text, "timestamp": now_ms(), "stream": stream.as_str() })));
                    }
                    entry.keep(stream, text);
                }
                None => lines_open = false,
            },
            permit = reserve(events.clone()), if pending.is_some() => match permit {
                Some(permit) => {
                    if let Some(frame) = pending.take() {
                        permit.send(frame);
                    }
                }
                None => {
                    // Nobody reads the stream any more: a `run` has no other consumer.
                    pending = None;
                    events = None;
                    if status.is_none() {
                        entry.kill(KillReason::Disconnected);
                    }
                }
            },
            _ = receiver_gone(events.as_ref()), if events.is_some() => {
                pending = None;
                events = None;
                // A process that already exited keeps its real ending.
                if status.is_none() {
                    entry.kill(KillReason::Disconnected);
                }
            }
            s = child.wait(), if status.is_none() => status = Some(s),
            _ = entry.kill.notified(), if status.is_none() && !killing => {
                killing = true;
                kill_jail(&entry);
            }
            _ = sleep_until(deadline), if status.is_none() && !killing => {
                entry.state().kill.get_or_insert(KillReason::Timeout);
                killing = true;
                kill_jail(&entry);
            }
        }
    }

    let (reason, delivered) = {
        let st = entry.state();
        (st.kill, st.delivered)
    };
    let ending = match (reason, status) {
        (Some(KillReason::Timeout), _) => Ending::Signaled(libc::SIGKILL, true),
        (Some(KillReason::Requested(sig)), _) => Ending::Signaled(sig, false),
        (Some(_), _) => Ending::Signaled(libc::SIGKILL, false),
        (None, Some(Ok(st))) => match (
            st.code(),
            std::os::unix::process::ExitStatusExt::signal(&st),
        ) {
            // bwrap exits 128+n when the command died of signal n; only a signal the server
            // delivered is read that way (a command may exit 143 by itself).
            (Some(c), _) if delivered.is_some_and(|d| c == 128 + d) => {
                Ending::Signaled(c - 128, false)
            }
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
        // Followers see the end of their feed after its last line.
        st.live = None;
    }
    entry.stdin_open.store(false, Ordering::Release);
    entry.stdin.lock().await.take();
    entry.finished.notify_waiters();
    if let Some(tx) = events {
        let _ = tx.send(sse_frame(&exit_event(ending))).await;
    }
}

/// Kills the jail in the background: stopping it first, so one still starting is not lost.
fn kill_jail(entry: &ProcEntry) {
    let pid = entry.host_pid;
    if pid > 0 {
        tokio::task::spawn_blocking(move || proc_signal::kill_jail(pid));
    }
}

async fn sleep_until(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Room for one frame in the `run` stream; `None` once its receiver has been dropped. Owned, so
/// that the supervisor can drop the stream while a reservation is pending.
async fn reserve(events: Option<mpsc::Sender<Bytes>>) -> Option<mpsc::OwnedPermit<Bytes>> {
    match events {
        Some(tx) => tx.reserve_owned().await.ok(),
        None => std::future::pending().await,
    }
}

/// Resolves when the `run` stream's receiver (the response body) has been dropped.
async fn receiver_gone(events: Option<&mpsc::Sender<Bytes>>) {
    match events {
        Some(tx) => tx.closed().await,
        None => std::future::pending().await,
    }
}
