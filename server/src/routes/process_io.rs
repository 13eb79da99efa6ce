//! A background process's stdin and live output (wire-protocol.md section 5.3):
//! `POST /api/v1/processes/{pid}/stdin` (raw bytes), `POST .../stdin/close`, and
//! `GET .../stdout|stderr|output/follow` (SSE).
//!
//! A follow stream sends the lines already kept, then each new line as the process writes it,
//! as `event: output` frames with `{"line","timestamp","stream"}`, and `event: eof` with `{}` once
//! the process has ended and its pipes are drained. New lines come from a bounded live feed
//! ([`crate::procs::FOLLOW_QUEUE`] lines), never from a growing buffer: a follower that reads slower
//! than the process prints misses lines (the stream goes on with the newest ones), and memory
//! stays flat whatever the process prints. The stream stops when the client disconnects.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::RawPathParams;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::sync::broadcast::error::RecvError;

use super::processes::{find_proc, jerr, stream_param, target};
use super::St;
use crate::http::{empty, read_body, ApiError};
use crate::procs::Stream;

/// Largest body of one `POST .../stdin`: 1 MiB (send more in several writes).
pub const STDIN_LIMIT: usize = 1 << 20;
/// How long a write may wait for a command that does not read its stdin.
const STDIN_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// `POST /api/v1/processes/{pid}/stdin`: writes the raw body to the process's stdin → 204.
/// 409 `STDIN_CLOSED` when it was not started with `stdin_mode: "pipe"` or its stdin was
/// closed, 409 `PROCESS_EXITED` when it has ended, 413 over [`STDIN_LIMIT`], 408 when the
/// command does not read within 10 s.
pub async fn write(
    axum::extract::State(st): St,
    headers: HeaderMap,
    params: RawPathParams,
    body: Body,
) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let entry = find_proc(&st, &t, &params)?;
    let data = read_body(&headers, body, STDIN_LIMIT)
        .await
        .map_err(|e| e.into_json("INVALID_REQUEST"))?;
    if !entry.running() {
        return Err(exited(entry.pid));
    }
    let mut guard = entry.stdin.lock().await;
    let Some(pipe) = guard.as_mut() else {
        return Err(closed(entry.pid));
    };
    match tokio::time::timeout(STDIN_WRITE_TIMEOUT, async {
        pipe.write_all(&data).await?;
        pipe.flush().await
    })
    .await
    {
        Ok(Ok(())) => Ok(empty(StatusCode::NO_CONTENT)),
        Ok(Err(_)) => {
            // The command closed its end (or ended): no further write can succeed.
            guard.take();
            drop(guard);
            entry.close_stdin().await;
            Err(if entry.running() {
                closed(entry.pid)
            } else {
                exited(entry.pid)
            })
        }
        Err(_) => Err(jerr(
            StatusCode::REQUEST_TIMEOUT,
            "STDIN_TIMEOUT",
            format!(
                "process {} did not read its stdin within {} s",
                entry.pid,
                STDIN_WRITE_TIMEOUT.as_secs()
            ),
        )),
    }
}

/// `POST /api/v1/processes/{pid}/stdin/close`: closes its stdin (EOF) → 204; 409 as for a write
/// when it is not open.
pub async fn close(
    axum::extract::State(st): St,
    headers: HeaderMap,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let entry = find_proc(&st, &t, &params)?;
    if entry.close_stdin().await {
        Ok(empty(StatusCode::NO_CONTENT))
    } else if !entry.running() {
        Err(exited(entry.pid))
    } else {
        Err(closed(entry.pid))
    }
}

fn closed(pid: u32) -> ApiError {
    jerr(
        StatusCode::CONFLICT,
        "STDIN_CLOSED",
        format!("process {pid} has no open stdin (start it with \"stdin_mode\": \"pipe\"; once closed it stays closed)"),
    )
}

fn exited(pid: u32) -> ApiError {
    jerr(
        StatusCode::CONFLICT,
        "PROCESS_EXITED",
        format!("process {pid} has already ended"),
    )
}

fn frame(event: &str, data: &serde_json::Value) -> Bytes {
    Bytes::from(format!("event: {event}\ndata: {data}\n\n"))
}

fn output_frame(stream: Stream, at: i64, line: &str) -> Bytes {
    frame(
        "output",
        &json!({ "line": line, "timestamp": at, "stream": stream.as_str() }),
    )
}

/// `GET /api/v1/processes/{pid}/stdout|stderr|output/follow` (see the module notes).
pub async fn follow(
    axum::extract::State(st): St,
    headers: HeaderMap,
    params: RawPathParams,
) -> Result<Response, ApiError> {
    let t = target(&st, &headers).await?;
    let only = stream_param(&params)?;
    let entry = find_proc(&st, &t, &params)?;
    let (kept, live) = entry.follow(only);
    let replay = futures_util::stream::iter(
        kept.into_iter()
            .map(|(s, at, l)| Ok::<Bytes, std::convert::Infallible>(output_frame(s, at, &l))),
    );
    // Pulled one frame at a time by the response body: nothing is read ahead of the client.
    let tail = futures_util::stream::unfold(Some(live), move |state| async move {
        let mut live = state?;
        loop {
            let next = match live.as_mut() {
                Some(rx) => rx.recv().await,
                None => Err(RecvError::Closed),
            };
            match next {
                Ok(ev) if only.is_none_or(|o| o == ev.stream) => {
                    return Some((Ok(output_frame(ev.stream, ev.at, &ev.line)), Some(live)))
                }
                Ok(_) => continue,
                // Documented: a slow follower skips what it missed and goes on with new lines.
                Err(RecvError::Lagged(_)) => continue,
                Err(RecvError::Closed) => return Some((Ok(frame("eof", &json!({}))), None)),
            }
        }
    });
    use futures_util::StreamExt;
    let mut resp = Response::new(Body::from_stream(replay.chain(tail)));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    resp.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    Ok(resp)
}
