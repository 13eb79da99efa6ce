//! Streaming the bodies of the file routes: a file is sent and received in chunks, never held
//! whole, and only a bounded number of transfers run at once.

use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{Semaphore, SemaphorePermit};

use crate::http::ApiError;

/// File transfers (a GET's or a PUT's body) in flight at once, server-wide. Each holds a file,
/// a blocking thread at times and a chunk buffer, so a burst of clients cannot grow the server
/// without bound. A request beyond that waits for a slot, up to [`SLOT_WAIT`], then gets 503
/// `TOO_MANY_TRANSFERS` with `Retry-After: 1`.
pub const TRANSFER_SLOTS: usize = 16;
/// How long a file request waits for a transfer slot.
pub const SLOT_WAIT: Duration = Duration::from_secs(30);
/// How long a transfer may make no progress (a client that neither sends the rest of its body
/// nor reads the file it asked for) before it is ended and its slot freed: without it,
/// [`TRANSFER_SLOTS`] clients that stall would stop every other transfer of the server.
pub const STALL_LIMIT: Duration = Duration::from_secs(30);
/// Bytes read from or written to the disk at a time.
const CHUNK: usize = 128 * 1024;

static SLOTS: Semaphore = Semaphore::const_new(TRANSFER_SLOTS);

/// Waits for a transfer slot; the response to send instead when none came in time.
pub async fn slot() -> Result<SemaphorePermit<'static>, Response> {
    match tokio::time::timeout(SLOT_WAIT, SLOTS.acquire()).await {
        Ok(Ok(permit)) => Ok(permit),
        _ => {
            let mut resp = ApiError::Json(
                StatusCode::SERVICE_UNAVAILABLE,
                "TOO_MANY_TRANSFERS",
                format!(
                    "{TRANSFER_SLOTS} file transfers are already running and none finished within {} s; retry",
                    SLOT_WAIT.as_secs()
                ),
            )
            .into_response();
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            Err(resp)
        }
    }
}

/// A 200 streaming exactly `size` bytes of `file` (its size when opened): a file that shrinks
/// meanwhile is padded with zeros, one that grows is cut, so the body always matches its
/// `Content-Length`. The slot is held until the body is finished or dropped, or until the
/// client has taken nothing for [`STALL_LIMIT`]: the body then ends short, which closes the
/// connection.
pub fn serve(file: std::fs::File, size: u64, permit: SemaphorePermit<'static>) -> Response {
    let mut file = tokio::fs::File::from_std(file);
    // A task reads ahead by one chunk; the channel's send is what notices a stalled reader.
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(1);
    tokio::spawn(async move {
        let _permit = permit;
        let mut left = size;
        while left > 0 {
            let want = CHUNK.min(left as usize);
            let mut buf = vec![0u8; want];
            let n = match file.read(&mut buf).await {
                // Shrunk since it was opened: the zeros already in `buf` stand in.
                Ok(0) => want,
                Ok(n) => n,
                Err(e) => {
                    let _ = tx.send_timeout(Err(e), STALL_LIMIT).await;
                    return;
                }
            };
            buf.truncate(n);
            left -= n as u64;
            if tx.send_timeout(Ok(Bytes::from(buf)), STALL_LIMIT).await.is_err() {
                return;
            }
        }
    });
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|item| (item, rx))
    });
    let mut resp = Response::new(Body::from_stream(stream));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(size));
    resp
}

/// Why receiving a body into a file stopped.
pub enum ReceiveError {
    /// More than the limit arrived.
    TooLarge,
    /// The client's body broke off.
    Body(String),
    /// The client sent nothing for [`STALL_LIMIT`].
    Stalled,
    /// Writing the file failed.
    Io(std::io::Error),
}

/// Writes the request body into `file` (already emptied) chunk by chunk, refusing more than
/// `limit` bytes. On failure the file is emptied again, so a cut-off upload never looks whole.
pub async fn receive(file: std::fs::File, body: Body, limit: usize) -> Result<u64, ReceiveError> {
    let mut file = tokio::fs::File::from_std(file);
    let mut stream = body.into_data_stream();
    let mut total = 0u64;
    let result = async {
        loop {
            let next = tokio::time::timeout(STALL_LIMIT, stream.next()).await;
            let Some(chunk) = next.map_err(|_| ReceiveError::Stalled)? else {
                break;
            };
            let chunk = chunk.map_err(|e| ReceiveError::Body(e.to_string()))?;
            total += chunk.len() as u64;
            if total > limit as u64 {
                return Err(ReceiveError::TooLarge);
            }
            file.write_all(&chunk).await.map_err(ReceiveError::Io)?;
        }
        // tokio writes in the background: flush surfaces the last write's error (ENOSPC).
        file.flush().await.map_err(ReceiveError::Io)?;
        Ok(total)
    }
    .await;
    if result.is_err() {
        let _ = file.flush().await;
        let _ = file.set_len(0).await;
    }
    result
}
