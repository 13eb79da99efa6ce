//! Shared test harness: starts the real `tensorlake-local` binary on `--port 0` with a fresh data
//! directory, and talks to it with a small raw HTTP/1.1 client (so tests see exactly what went
//! on the wire: status line, headers, a body cut short, a dropped connection).

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// A running server.
pub struct Server {
    pub port: u16,
    pub data: PathBuf,
    child: Option<Child>,
    stderr: Arc<Mutex<String>>,
    stdout_rest: Arc<Mutex<String>>,
    keep_data: bool,
}

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// Fails the test unless it runs as root (CI runs the suite as root).
pub fn require_root() {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(euid, 0, "this test needs root (CI runs the suite as root)");
}

/// A fresh, empty directory under the system temp dir.
pub fn temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("tl-local-test-{}-{tag}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A temporary directory removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(tag: &str) -> Scratch {
        Scratch(temp_dir(tag))
    }
}

impl std::ops::Deref for Scratch {
    type Target = PathBuf;
    fn deref(&self) -> &PathBuf {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Server {
    /// Starts a server with test-friendly timings and `extra` flags.
    pub fn start(extra: &[&str]) -> Server {
        Self::start_in(temp_dir("data"), extra, &[])
    }

    /// Starts a server on `data` with `extra` flags and environment.
    pub fn start_in(data: PathBuf, extra: &[&str], env: &[(&str, &str)]) -> Server {
        Self::start_with(data, extra, env, |_| {})
    }

    /// [`Server::start_in`], with `setup` applied to the command before it is spawned (for
    /// example, limits set in `pre_exec`).
    pub fn start_with(
        data: PathBuf,
        extra: &[&str],
        env: &[(&str, &str)],
        setup: impl FnOnce(&mut Command),
    ) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_tensorlake-local"));
        cmd.args(["--port", "0", "--data-dir"])
            .arg(&data)
            .args([
                "--snapshot-local-ready-ms",
                "100",
                "--snapshot-completed-ms",
                "200",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        setup(&mut cmd);
        let mut child = cmd.spawn().expect("start tensorlake-local");
        let stderr = Arc::new(Mutex::new(String::new()));
        let err_pipe = child.stderr.take().unwrap();
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(err_pipe);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                sink.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let out = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout_rest = Arc::new(Mutex::new(String::new()));
        let rest = stdout_rest.clone();
        std::thread::spawn(move || {
            let mut r = BufReader::new(out);
            let mut first = String::new();
            let _ = r.read_line(&mut first);
            let _ = tx.send(first);
            let mut line = String::new();
            while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                rest.lock().unwrap().push_str(&line);
                line.clear();
            }
        });
        let first = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not print its listening line; stderr: {}",
                    stderr.lock().unwrap()
                );
            }
        };
        let prefix = "tensorlake-local listening on http://127.0.0.1:";
        let port = first
            .trim_end()
            .strip_prefix(prefix)
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "unexpected first stdout line {first:?}; stderr: {}",
                    stderr.lock().unwrap()
                )
            });
        Server {
            port,
            data,
            child: Some(child),
            stderr,
            stdout_rest,
            keep_data: false,
        }
    }

    /// Everything the server wrote to stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Everything after the first stdout line.
    pub fn stdout_rest(&self) -> String {
        self.stdout_rest.lock().unwrap().clone()
    }

    /// Kills the server with SIGKILL and waits for it, keeping the data directory.
    pub fn kill9(mut self) -> PathBuf {
        self.keep_data = true;
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        self.data.clone()
    }

    /// Stops the server with SIGTERM, waits, and keeps the data directory.
    pub fn stop(mut self) -> PathBuf {
        self.keep_data = true;
        if let Some(mut c) = self.child.take() {
            unsafe_sigterm(c.id());
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
        self.data.clone()
    }

    /// Host process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    // ---- HTTP ----

    pub fn req(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Resp {
        request(self.port, method, path, headers, body)
    }

    pub fn get(&self, path: &str) -> Resp {
        self.req("GET", path, &[], None)
    }

    pub fn delete(&self, path: &str) -> Resp {
        self.req("DELETE", path, &[], None)
    }

    pub fn post_json(&self, path: &str, body: &Value) -> Resp {
        let b = body.to_string();
        self.req(
            "POST",
            path,
            &[("Content-Type", "application/json")],
            Some(b.as_bytes()),
        )
    }

    pub fn post_empty(&self, path: &str) -> Resp {
        self.req("POST", path, &[], Some(b""))
    }

    pub fn put_json(&self, path: &str, body: &Value) -> Resp {
        let b = body.to_string();
        self.req(
            "PUT",
            path,
            &[("Content-Type", "application/json")],
            Some(b.as_bytes()),
        )
    }

    // ---- API helpers ----

    /// Creates a sandbox; returns its id.
    pub fn sandbox(&self) -> String {
        self.sandbox_with(json!({"resources": {"cpus": 1.0, "memory_mb": 1024}}))
    }

    /// Creates a sandbox from this create body; returns its id.
    pub fn sandbox_with(&self, body: Value) -> String {
        let r = self.post_json("/v1/namespaces/default/sandboxes", &body);
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["sandbox_id"].as_str().unwrap().to_string()
    }

    /// Runs a command (no shell) in `sandbox` and returns (exit event, stdout lines, stderr lines).
    pub fn run(&self, sandbox: &str, command: &str, args: &[&str]) -> Run {
        self.run_body(sandbox, &json!({ "command": command, "args": args }))
    }

    /// Runs `sh -c script`.
    pub fn sh(&self, sandbox: &str, script: &str) -> Run {
        self.run(sandbox, "sh", &["-c", script])
    }

    pub fn run_body(&self, sandbox: &str, body: &Value) -> Run {
        let b = body.to_string();
        let r = self.req(
            "POST",
            "/api/v1/processes/run",
            &[
                ("Content-Type", "application/json"),
                ("X-Tensorlake-Sandbox-Id", sandbox),
                ("Accept", "text/event-stream"),
            ],
            Some(b.as_bytes()),
        );
        assert_eq!(r.status, 200, "run failed: {}", r.text());
        assert_eq!(r.header("content-type"), Some("text/event-stream"));
        Run::parse(&r.text())
    }

    /// Takes a snapshot; returns its id.
    pub fn snapshot(&self, sandbox: &str) -> String {
        let r = self.post_empty(&format!(
            "/v1/namespaces/default/sandboxes/{sandbox}/snapshot"
        ));
        assert_eq!(r.status, 202, "{}", r.text());
        r.json()["snapshot_id"].as_str().unwrap().to_string()
    }

    /// Polls a snapshot until its status is one of `want` (panics after 30 s).
    pub fn wait_snapshot(&self, id: &str, want: &[&str]) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let r = self.get(&format!("/v1/namespaces/default/snapshots/{id}"));
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            if want.contains(&v["status"].as_str().unwrap()) {
                return v;
            }
            assert!(Instant::now() < deadline, "snapshot {id} stuck at {v}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// File API read.
    pub fn read_file(&self, sandbox: &str, path: &str) -> Resp {
        let q = format!("/api/v1/files?path={}", urlencode(path));
        self.req("GET", &q, &[("X-Tensorlake-Sandbox-Id", sandbox)], None)
    }

    /// File API write.
    pub fn write_file(&self, sandbox: &str, path: &str, data: &[u8]) -> Resp {
        let q = format!("/api/v1/files?path={}", urlencode(path));
        self.req(
            "PUT",
            &q,
            &[("X-Tensorlake-Sandbox-Id", sandbox)],
            Some(data),
        )
    }

    /// Admin request log.
    pub fn requests(&self) -> Vec<Value> {
        self.get("/_admin/requests").json()["requests"]
            .as_array()
            .unwrap()
            .clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        if !self.keep_data {
            remove_data_dir(&self.data);
        }
    }
}

fn unsafe_sigterm(pid: u32) {
    // SAFETY: kill(2) on our own child's pid.
    unsafe {
        libc::kill(pid as i32, libc::SIGTERM);
    }
}

/// Whether a process whose command line starts with `prefix` is running (a /proc scan, so the
/// tests need no procps).
pub fn process_running(prefix: &str) -> bool {
    std::fs::read_dir("/proc").unwrap().flatten().any(|e| {
        let Ok(cmdline) = std::fs::read(e.path().join("cmdline")) else {
            return false;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .filter(|a| !a.is_empty())
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        args.join(" ").starts_with(prefix)
    })
}

/// The events of one `run` stream.
#[derive(Debug)]
pub struct Run {
    pub events: Vec<Value>,
    pub stdout: Vec<String>,
    pub stderr: Vec<String>,
    pub exit: Value,
}

impl Run {
    pub fn parse(text: &str) -> Run {
        let mut events = Vec::new();
        for frame in text.split("\n\n").filter(|f| !f.trim().is_empty()) {
            let data = frame
                .strip_prefix("data: ")
                .unwrap_or_else(|| panic!("frame without data: {frame:?}"));
            events.push(serde_json::from_str::<Value>(data).unwrap());
        }
        let stdout = events
            .iter()
            .filter(|e| e["stream"] == "stdout")
            .map(|e| e["line"].as_str().unwrap().to_string())
            .collect();
        let stderr = events
            .iter()
            .filter(|e| e["stream"] == "stderr")
            .map(|e| e["line"].as_str().unwrap().to_string())
            .collect();
        let exit = events.last().cloned().unwrap_or(Value::Null);
        Run {
            events,
            stdout,
            stderr,
            exit,
        }
    }

    pub fn code(&self) -> i64 {
        self.exit["exit_code"]
            .as_i64()
            .unwrap_or_else(|| panic!("no exit_code in {:?}", self.exit))
    }
}

pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// One HTTP exchange as seen on the wire.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// Whether the body arrived whole (all Content-Length bytes, or the final chunk).
    pub complete: bool,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn headers_named(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text()))
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type").unwrap_or("")
    }
}

/// Sends one request on a fresh connection and reads the response to EOF.
pub fn request(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<&[u8]>,
) -> Resp {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        head.push_str(&format!("Host: 127.0.0.1:{port}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if let Some(b) = body {
        if !headers.iter().any(|(k, _)| {
            k.eq_ignore_ascii_case("content-length") || k.eq_ignore_ascii_case("transfer-encoding")
        }) {
            head.push_str(&format!("Content-Length: {}\r\n", b.len()));
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    s.write_all(head.as_bytes()).unwrap();
    if let Some(b) = body {
        // A server may answer (413) before reading everything; ignore write errors.
        let _ = s.write_all(b);
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    parse_response(&raw)
}

pub fn parse_response(raw: &[u8]) -> Resp {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response head in {:?}", String::from_utf8_lossy(raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let rest = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status: u16 = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
    let (body, complete) = if get("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
        dechunk(rest)
    } else if let Some(cl) = get("content-length").and_then(|v| v.parse::<usize>().ok()) {
        (rest[..rest.len().min(cl)].to_vec(), rest.len() >= cl)
    } else {
        (rest.to_vec(), true)
    };
    Resp {
        status,
        headers,
        body,
        complete,
    }
}

fn dechunk(mut data: &[u8]) -> (Vec<u8>, bool) {
    let mut out = Vec::new();
    loop {
        let Some(eol) = data.windows(2).position(|w| w == b"\r\n") else {
            return (out, false);
        };
        let size_str = String::from_utf8_lossy(&data[..eol]).into_owned();
        let size =
            usize::from_str_radix(size_str.split(';').next().unwrap().trim(), 16).unwrap_or(0);
        data = &data[eol + 2..];
        if size == 0 {
            return (out, true);
        }
        if data.len() < size {
            out.extend_from_slice(data);
            return (out, false);
        }
        out.extend_from_slice(&data[..size]);
        data = &data[(size + 2).min(data.len())..];
    }
}

/// Waits until `f` is true (panics after `secs`).
pub fn eventually(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// Whether a directory tree contains `path`.
pub fn exists(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// Starts the server as `uid` (and the gid of the same number, no supplementary groups) through
/// `setpriv`, on `data`, which that user must own.
pub fn start_as_user(uid: u32, data: PathBuf, extra: &[&str]) -> Server {
    let bin = env!("CARGO_BIN_EXE_tensorlake-local");
    let mut cmd = Command::new("setpriv");
    let id = uid.to_string();
    cmd.args(["--reuid", &id, "--regid", &id, "--clear-groups", bin])
        .args(["--port", "0", "--data-dir"])
        .arg(&data)
        .args(extra)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start tensorlake-local through setpriv");
    let stderr = Arc::new(Mutex::new(String::new()));
    let sink = stderr.clone();
    let err_pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        let mut r = BufReader::new(err_pipe);
        let mut line = String::new();
        while r.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            sink.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    let _ = out.read_line(&mut first);
    let port = first
        .trim_end()
        .strip_prefix("tensorlake-local listening on http://127.0.0.1:")
        .and_then(|p| p.parse().ok())
        .unwrap_or_else(|| {
            let _ = child.kill();
            panic!(
                "no listening line: {first:?}; stderr: {}",
                stderr.lock().unwrap()
            )
        });
    let stdout_rest = Arc::new(Mutex::new(String::new()));
    let rest = stdout_rest.clone();
    std::thread::spawn(move || {
        let mut line = String::new();
        while out.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            rest.lock().unwrap().push_str(&line);
            line.clear();
        }
    });
    Server {
        port,
        data,
        child: Some(child),
        stderr,
        stdout_rest,
        keep_data: false,
    }
}

/// Removes a data directory. A server run as root has its sandbox filesystems unmounted by its
/// clean-up process a moment after it dies; until then their mount points cannot be removed.
pub fn remove_data_dir(data: &Path) {
    for _ in 0..100 {
        if std::fs::remove_dir_all(data).is_ok() || !data.exists() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
