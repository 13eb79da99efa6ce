//! What a process prints: its pipes split into lines, and the bounded record of those lines kept
//! for the output endpoints (`GET /api/v1/processes/{pid}/stdout|stderr|output`).
//!
//! Memory is bounded whatever a command prints: lines are cut at [`MAX_LINE`] bytes, invalid
//! UTF-8 becomes U+FFFD (up to three times the bytes, which the budgets count), and each
//! stream of a process keeps at most [`STREAM_BUDGET`] bytes and a process [`KEPT_LINES`] lines,
//! oldest dropped first. The sandbox-wide [`SANDBOX_BUDGET`] is applied by `procs`.

use std::collections::VecDeque;

use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::mpsc;

/// Bytes of output kept per stream (stdout, stderr) of one process: 1 MiB.
pub const STREAM_BUDGET: usize = 1 << 20;
/// Bytes of output kept over all processes of one sandbox, running and finished: 16 MiB.
/// Beyond it the oldest lines of the oldest processes go first.
pub const SANDBOX_BUDGET: usize = 16 << 20;
/// What a kept line costs besides its text (its `String` and queue slot), so that millions of
/// empty lines are bounded too.
pub const LINE_OVERHEAD: usize = 64;
/// Lines kept per process, both streams together.
pub const KEPT_LINES: usize = 10_000;
/// Longest line, in bytes read from the pipe, sent as one event; longer output is cut into
/// pieces of this size (at a UTF-8 character boundary when there is one nearby).
pub const MAX_LINE: usize = 64 * 1024;

/// Which pipe a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

impl Stream {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }

    fn index(self) -> usize {
        match self {
            Stream::Stdout => 0,
            Stream::Stderr => 1,
        }
    }
}

/// What a kept line costs against the budgets.
fn cost(line: &str) -> usize {
    line.len() + LINE_OVERHEAD
}

/// The lines kept of one process. One queue per stream, so the per-stream budget drops that
/// stream's oldest line in O(1); a sequence number restores the interleaving for `output`.
#[derive(Debug, Default)]
pub struct Kept {
    streams: [VecDeque<(u64, i64, String)>; 2],
    bytes: [usize; 2],
    next_seq: u64,
}

impl Kept {
    /// Keeps `line`, dropping the oldest lines its stream or the line count no longer allows.
    /// Returns (cost added, cost dropped) for the sandbox-wide account.
    #[cfg(test)]
    pub fn push(&mut self, stream: Stream, line: String) -> (usize, usize) {
        self.push_at(stream, crate::model::now_ms(), line)
    }

    /// [`Kept::push`] with the instant the line was read.
    pub fn push_at(&mut self, stream: Stream, at: i64, line: String) -> (usize, usize) {
        let i = stream.index();
        let added = cost(&line);
        self.streams[i].push_back((self.next_seq, at, line));
        self.next_seq += 1;
        self.bytes[i] += added;
        let mut dropped = 0;
        while self.bytes[i] > STREAM_BUDGET {
            match self.streams[i].pop_front() {
                Some((_, _, old)) => {
                    self.bytes[i] -= cost(&old);
                    dropped += cost(&old);
                }
                None => break,
            }
        }
        while self.streams[0].len() + self.streams[1].len() > KEPT_LINES {
            match self.pop_oldest() {
                Some(c) => dropped += c,
                None => break,
            }
        }
        (added, dropped)
    }

    /// Drops the oldest line of either stream; returns its cost.
    pub fn pop_oldest(&mut self) -> Option<usize> {
        let front = |q: &VecDeque<(u64, i64, String)>| q.front().map(|(s, _, _)| *s);
        let i = match (front(&self.streams[0]), front(&self.streams[1])) {
            (Some(a), Some(b)) => usize::from(b < a),
            (Some(_), None) => 0,
            (None, Some(_)) => 1,
            (None, None) => return None,
        };
        let (_, _, old) = self.streams[i].pop_front()?;
        self.bytes[i] -= cost(&old);
        Some(cost(&old))
    }

    /// Cost of everything kept.
    pub fn total(&self) -> usize {
        self.bytes[0] + self.bytes[1]
    }

    /// The kept lines, oldest first, of one stream or both interleaved as they were read.
    pub fn lines(&self, only: Option<Stream>) -> Vec<String> {
        self.events(only).into_iter().map(|(_, _, l)| l).collect()
    }

    /// The kept lines with their stream and instant, oldest first (what a follower replays).
    pub fn events(&self, only: Option<Stream>) -> Vec<(Stream, i64, String)> {
        let mut all: Vec<(u64, Stream, i64, &String)> = Vec::new();
        for (stream, q) in [Stream::Stdout, Stream::Stderr]
            .into_iter()
            .zip(&self.streams)
        {
            if only.is_none_or(|o| o == stream) {
                all.extend(q.iter().map(|(seq, at, l)| (*seq, stream, *at, l)));
            }
        }
        all.sort_unstable_by_key(|(seq, ..)| *seq);
        all.into_iter()
            .map(|(_, s, at, l)| (s, at, l.clone()))
            .collect()
    }
}

/// Splits a pipe into lines (without `\n`, and without a trailing `\r`), cutting lines longer
/// than [`MAX_LINE`] so output without newlines cannot grow memory without bound.
pub async fn read_lines<R: AsyncRead + Unpin>(
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
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let mut start = 0;
        while let Some(i) = buf
            .get(start..)
            .and_then(|b| b.iter().position(|&b| b == b'\n'))
        {
            let end = start + i;
            let line = to_line(buf.get(start..end).unwrap_or_default());
            if tx.send((stream, line)).await.is_err() {
                return;
            }
            start = end + 1;
        }
        buf.drain(..start);
        while buf.len() >= MAX_LINE {
            let rest = buf.split_off(cut_point(&buf));
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

/// Where to cut a buffer of at least [`MAX_LINE`] bytes: [`MAX_LINE`], moved back onto the start
/// of a UTF-8 character when one starts within the last three bytes, so that a long line of
/// valid text is not mangled at the cut.
fn cut_point(buf: &[u8]) -> usize {
    let is_continuation = |i: usize| buf.get(i).is_some_and(|b| b & 0xC0 == 0x80);
    (MAX_LINE - 3..=MAX_LINE)
        .rev()
        .find(|&i| !is_continuation(i))
        .unwrap_or(MAX_LINE)
}

/// Bytes as text: a trailing `\r` dropped, invalid UTF-8 replaced by U+FFFD.
fn to_line(bytes: &[u8]) -> String {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    String::from_utf8_lossy(bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_stream_keeps_its_budget_and_the_newest_lines() {
        let mut k = Kept::default();
        let big = "x".repeat(100_000);
        for _ in 0..50 {
            k.push(Stream::Stdout, big.clone());
        }
        k.push(Stream::Stderr, "kept".into());
        assert!(k.bytes[0] <= STREAM_BUDGET);
        assert_eq!(k.lines(Some(Stream::Stderr)), vec!["kept".to_string()]);
        assert_eq!(k.total(), k.bytes[0] + k.bytes[1]);
    }

    #[test]
    fn the_line_count_is_bounded_and_drops_the_oldest_of_either_stream() {
        let mut k = Kept::default();
        k.push(Stream::Stderr, "first".into());
        for i in 0..KEPT_LINES {
            k.push(Stream::Stdout, i.to_string());
        }
        let all = k.lines(None);
        assert_eq!(all.len(), KEPT_LINES);
        assert_eq!(all.first().map(String::as_str), Some("0"));
        assert!(k.lines(Some(Stream::Stderr)).is_empty());
    }

    #[test]
    fn output_interleaves_as_read() {
        let mut k = Kept::default();
        k.push(Stream::Stdout, "a".into());
        k.push(Stream::Stderr, "b".into());
        k.push(Stream::Stdout, "c".into());
        assert_eq!(k.lines(None), vec!["a", "b", "c"]);
    }

    #[test]
    fn cuts_fall_on_character_boundaries() {
        let mut buf = vec![b'a'; MAX_LINE - 1];
        buf.extend_from_slice("é".as_bytes());
        buf.extend_from_slice(b"tail");
        assert_eq!(cut_point(&buf), MAX_LINE - 1);
        let invalid = vec![0xffu8; MAX_LINE + 10];
        assert_eq!(cut_point(&invalid), MAX_LINE);
    }
}
