//! The output of `POST /api/v1/processes/run`: a Server-Sent Events stream (wire-protocol §5.2)
//! folded into `{ exitCode, stdout, stderr }`.

use crate::platform::{Json, Key, Platform};

/// A finished command.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandOutput {
    /// The exit code, or minus the signal number when the process was killed by a signal.
    pub exit_code: f64,
    /// Standard output lines joined with `\n` (no trailing newline), as the SDKs return them.
    pub stdout: String,
    /// Standard error, likewise.
    pub stderr: String,
    /// The process id the sandbox reported, if any.
    pub pid: Option<f64>,
}

/// Splits an SSE stream into the `data` payloads of its events (multi-line data joined with `\n`;
/// comments, `event:` and `id:` lines ignored; `\r\n` accepted).
pub fn event_data(stream: &str) -> Vec<String> {
    let mut events = Vec::new();
    let mut current: Option<String> = None;
    for raw in stream.split('\n') {
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() {
            if let Some(data) = current.take() {
                events.push(data);
            }
            continue;
        }
        if let Some(value) = line.strip_prefix("data:") {
            let value = value.strip_prefix(' ').unwrap_or(value);
            match current.as_mut() {
                Some(data) => {
                    data.push('\n');
                    data.push_str(value);
                }
                None => current = Some(value.to_string()),
            }
        }
    }
    // A stream may end without the final blank line; its last event still counts.
    if let Some(data) = current {
        events.push(data);
    }
    events
}

/// Folds a complete run stream into a [`CommandOutput`]. Frames that are not JSON, and heartbeat
/// frames that carry nothing, are skipped as the SDKs skip them. A stream with no exit frame is an
/// error: the process's fate is unknown, and `-1` would look like a real exit code.
pub fn fold_run_stream<P: Platform>(p: &P, stream: &str) -> Result<CommandOutput, String> {
    let mut stdout = String::new();
    let mut stderr = String::new();
    let mut pid = None;
    let mut exit_code = None;
    for data in event_data(stream) {
        let Ok(frame) = p.parse_json(&data) else {
            continue;
        };
        if let Some(line) = frame.get(Key::Line).and_then(|l| l.as_string()) {
            let is_stderr = frame
                .get(Key::Stream)
                .and_then(|s| s.as_string())
                .is_some_and(|s| s == "stderr");
            let out = if is_stderr { &mut stderr } else { &mut stdout };
            if !out.is_empty() {
                out.push('\n');
            }
            out.push_str(&line);
        } else if let Some(code) = frame.get(Key::ExitCode).and_then(|c| c.as_f64()) {
            exit_code = Some(code);
        } else if let Some(signal) = frame.get(Key::Signal).and_then(|s| s.as_f64()) {
            exit_code = Some(-signal);
        } else if let Some(id) = frame.get(Key::Pid).and_then(|v| v.as_f64()) {
            pid = Some(id);
        }
    }
    let exit_code = exit_code.ok_or("the process stream ended without an exit event")?;
    Ok(CommandOutput {
        exit_code,
        stdout,
        stderr,
        pid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::Fake;

    #[test]
    fn splits_events_like_a_browser_eventsource() {
        let stream = ": comment\r\nevent: output\r\ndata: {\"a\":1}\r\n\r\ndata: one\ndata: two\n\nid: 3\ndata: last";
        assert_eq!(event_data(stream), vec!["{\"a\":1}", "one\ntwo", "last"]);
    }

    #[test]
    fn folds_the_reference_stream() {
        let stream = concat!(
            "data: {\"pid\":42,\"started_at\":1796040000000}\n\n",
            "data: {\"line\":\"a,b\",\"timestamp\":1796040000001,\"stream\":\"stdout\"}\n\n",
            "data: {\"line\":\"warning\",\"timestamp\":1796040000002,\"stream\":\"stderr\"}\n\n",
            "data: {}\n\n",
            "data: not json\n\n",
            "data: {\"line\":\"c,d\",\"timestamp\":1796040000003}\n\n",
            "data: {\"exit_code\":3}\n\n",
        );
        let out = fold_run_stream(&Fake::new(vec![]), stream).unwrap();
        assert_eq!(out.stdout, "a,b\nc,d");
        assert_eq!(out.stderr, "warning");
        assert_eq!(out.exit_code, 3.0);
        assert_eq!(out.pid, Some(42.0));
    }

    #[test]
    fn a_signal_is_a_negative_exit_code() {
        let out = fold_run_stream(
            &Fake::new(vec![]),
            "data: {\"signal\":9,\"oom_killed\":false}\n\n",
        )
        .unwrap();
        assert_eq!(out.exit_code, -9.0);
    }

    #[test]
    fn a_stream_without_exit_is_an_error() {
        let err = fold_run_stream(
            &Fake::new(vec![]),
            "data: {\"pid\":1}\n\ndata: {\"line\":\"x\",\"timestamp\":1}\n\n",
        )
        .unwrap_err();
        assert!(err.contains("without an exit event"));
    }
}
