//! The HTTP surface against a hostile local user or web page: keys, hosts, namespaces, a client
//! that goes away, output that would fill memory, the data directory's modes, and input the
//! kernel would refuse. Each test is an attack that worked on an earlier server.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{eventually, process_running, Resp, Server};
use serde_json::{json, Value};

const P: &str = "/v1/namespaces/default";

/// Runs the binary with `args` and `env`; returns (exit status, stderr), or panics if it is
/// still running after 15 s (a server that started instead of refusing).
fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> (std::process::ExitStatus, String) {
    let data = common::temp_dir("refused");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tensorlake-local"));
    cmd.args(["--port", "0", "--data-dir"])
        .arg(&data)
        .args(args)
        .env_remove("TENSORLAKE_LOCAL_API_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_dir_all(&data);
            panic!("the server started with {args:?} {env:?} instead of refusing");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut err = String::new();
    let _ = child.stderr.take().unwrap().read_to_string(&mut err);
    let _ = std::fs::remove_dir_all(&data);
    (status, err)
}

#[test]
fn an_empty_api_key_is_refused_at_start() {
    for (args, env) in [
        (vec!["--api-key", ""], vec![]),
        (vec![], vec![("TENSORLAKE_LOCAL_API_KEY", "")]),
        (vec!["--api-key", " "], vec![]),
    ] {
        let (status, err) = run_to_exit(&args, &env);
        assert!(!status.success(), "{args:?} {env:?}");
        assert!(err.contains("TENSORLAKE_LOCAL_API_KEY"), "{err}");
        assert!(err.contains("empty") || err.contains("spaces"), "{err}");
    }
}

#[test]
fn the_admin_api_requires_the_key_when_there_is_one() {
    let key = "tl_apiKey_admin_secret";
    let s = Server::start(&["--api-key", key]);
    let fault = br#"{"path":"/v1/namespaces/default/snapshots","status":503}"#;
    let r = s.req("POST", "/_admin/faults", &[], Some(fault));
    assert_eq!(r.status, 401, "{}", r.text());
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    for path in ["/_admin/requests", "/_admin/faults", "/_admin/timing"] {
        assert_eq!(s.get(path).status, 401, "{path}");
        let wrong = s.req("GET", path, &[("Authorization", "Bearer nope")], None);
        assert_eq!(wrong.status, 401, "{path}");
        assert!(!wrong.text().contains(key));
    }
    assert_eq!(s.post_empty("/_admin/reset").status, 401);
    let auth = format!("Bearer {key}");
    let h = [("Authorization", auth.as_str())];
    // The refused fault was not armed.
    let snaps = s.req("GET", &format!("{P}/snapshots"), &h, None);
    assert_eq!(snaps.status, 200);
    let ok = s.req(
        "POST",
        "/_admin/faults",
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        Some(fault),
    );
    assert_eq!(ok.status, 201, "{}", ok.text());
    assert_eq!(
        s.req("GET", &format!("{P}/snapshots"), &h, None).status,
        503
    );
    assert_eq!(s.req("GET", "/_admin/requests", &h, None).status, 200);
    // Without a key the admin API stays open to loopback clients, as the test suites use it.
    let open = Server::start(&[]);
    assert_eq!(open.get("/_admin/requests").status, 200);
}

fn with_host(s: &Server, path: &str, host: &str) -> Resp {
    s.req("GET", path, &[("Host", host)], None)
}

#[test]
fn only_loopback_names_and_existing_sandboxes_are_served() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let port = s.port;
    for host in [
        "evil.local".to_string(),
        "x.localhost".to_string(),
        format!("x.localhost:{port}"),
        "example.com".to_string(),
        format!("example.com:{port}"),
        "sbx-doesnotexist00000000.local".to_string(),
        format!("{sb}.local.evil.example"),
        format!("{sb}.example"),
        "127.0.0.2".to_string(),
    ] {
        for path in [format!("{P}/sandboxes"), "/api/v1/processes".to_string()] {
            let r = with_host(&s, &path, &host);
            assert_eq!(r.status, 421, "{host} {path}: {}", r.text());
            assert!(r.text().contains("Host"), "{}", r.text());
        }
    }
    // A preflight from a rebinding page is refused too.
    let pre = s.req(
        "OPTIONS",
        &format!("{P}/sandboxes"),
        &[
            ("Host", "evil.local"),
            ("Origin", "http://evil.local"),
            ("Access-Control-Request-Method", "POST"),
        ],
        None,
    );
    assert_eq!(pre.status, 421);
    for host in [
        format!("localhost:{port}"),
        "localhost".to_string(),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
        format!("{sb}.local"),
        format!("{sb}.local:{port}"),
    ] {
        let r = with_host(&s, &format!("{P}/sandboxes"), &host);
        assert_eq!(r.status, 200, "{host}: {}", r.text());
    }
    // The official SDK's way: the sandbox named by Host alone (`.local` in any case).
    for host in [format!("{sb}.local"), format!("{sb}.LOCAL:{port}")] {
        let r = with_host(&s, "/api/v1/processes", &host);
        assert_eq!(r.status, 200, "{host}: {}", r.text());
        assert_eq!(r.json()["processes"], json!([]));
    }
}

/// Sends a `run` on a connection it returns once the `started` event has arrived.
fn start_run(s: &Server, sandbox: &str, body: &Value) -> TcpStream {
    let body = body.to_string();
    let mut c = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let head = format!(
        "POST /api/v1/processes/run HTTP/1.1\r\nHost: {sandbox}.local\r\nContent-Type: application/json\r\nAccept: text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    c.write_all(head.as_bytes()).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("\"pid\"") {
        let n = c.read(&mut buf).unwrap();
        assert!(n > 0, "stream closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&got).starts_with("HTTP/1.1 200"));
    c
}

#[test]
fn a_silent_run_is_killed_when_its_client_disconnects() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let marker = format!("3{}.25", std::process::id() % 1000);
    let client = start_run(&s, &sb, &json!({"command": "sleep", "args": [marker]}));
    let prefix = format!("sleep {marker}");
    eventually(10, "the command to start", || process_running(&prefix));
    drop(client);
    let gone = Instant::now() + Duration::from_secs(8);
    while process_running(&prefix) && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(50));
    }
    let still = process_running(&prefix);
    // Old servers leave it running: end it so the test leaves nothing behind.
    let _ = s.delete(&format!("{P}/sandboxes/{sb}"));
    assert!(!still, "the command outlived its client");
    // A client that stays is not disturbed by silence.
    let sb = s.sandbox();
    let r = s.sh(&sb, "sleep 2; echo done");
    assert_eq!(r.stdout, vec!["done"]);
    assert_eq!(r.code(), 0);
}

#[test]
fn a_client_that_stops_reading_does_not_stop_the_timeout() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let marker = format!("slow-reader-{}", std::process::id());
    let client = start_run(
        &s,
        &sb,
        &json!({"command": "yes", "args": [marker], "timeout": 2}),
    );
    // The client reads nothing more: the stream fills up and the supervisor waits for room.
    let prefix = format!("yes {marker}");
    eventually(10, "the command to start", || process_running(&prefix));
    let gone = Instant::now() + Duration::from_secs(15);
    while process_running(&prefix) && Instant::now() < gone {
        std::thread::sleep(Duration::from_millis(100));
    }
    let still = process_running(&prefix);
    drop(client);
    assert!(!still, "the timeout did not fire while the client was slow");
}

#[test]
fn names_are_found_in_their_own_namespace_only() {
    let s = Server::start(&[]);
    let create = |ns: &str, name: &str| {
        let r = s.post_json(
            &format!("/v1/namespaces/{ns}/sandboxes"),
            &json!({"name": name, "resources": {"cpus": 1.0, "memory_mb": 512}}),
        );
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["sandbox_id"].as_str().unwrap().to_string()
    };
    let a = create("team-a", "private-box");
    assert_eq!(
        s.get("/v1/namespaces/team-b/sandboxes/private-box").status,
        404
    );
    let by_header = s.req(
        "GET",
        "/api/v1/processes",
        &[("X-Tensorlake-Sandbox-Id", "private-box")],
        None,
    );
    assert_eq!(by_header.status, 404, "{}", by_header.text());
    assert_eq!(by_header.json()["code"], "SANDBOX_NOT_FOUND");
    assert_eq!(
        with_host(&s, "/api/v1/processes", "private-box.local").status,
        421
    );
    let r = s.req(
        "POST",
        "/api/v1/processes/run",
        &[("X-Tensorlake-Sandbox-Id", "private-box")],
        Some(br#"{"command":"true"}"#),
    );
    assert_eq!(r.status, 404);
    // The id still works from anywhere (the SDKs resolve names to ids first).
    let r = s.req(
        "GET",
        "/api/v1/processes",
        &[("X-Tensorlake-Sandbox-Id", a.as_str())],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        with_host(&s, "/api/v1/processes", &format!("{a}.local")).status,
        200
    );
    // A name in the default namespace is found by name, and a same-named sandbox elsewhere
    // does not shadow it.
    let d = create("default", "private-box");
    let r = s.run_body("private-box", &json!({"command": "true"}));
    assert_eq!(r.code(), 0);
    let listed = s.req(
        "GET",
        "/api/v1/processes",
        &[("X-Tensorlake-Sandbox-Id", d.as_str())],
        None,
    );
    assert_eq!(listed.json()["processes"].as_array().unwrap().len(), 1);
    let other = s.req(
        "GET",
        "/api/v1/processes",
        &[("X-Tensorlake-Sandbox-Id", a.as_str())],
        None,
    );
    assert_eq!(other.json()["processes"], json!([]));
}

/// Starts `script` in the background and waits (up to 3 min) until it has ended; returns its pid.
fn run_in_background(s: &Server, sb: &str, script: &str) -> u64 {
    let body = json!({"command": "sh", "args": ["-c", script]}).to_string();
    let r = s.req(
        "POST",
        "/api/v1/processes",
        &[
            ("X-Tensorlake-Sandbox-Id", sb),
            ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let pid = r.json()["pid"].as_u64().unwrap();
    eventually(180, "the process to end", || {
        let r = s.req(
            "GET",
            &format!("/api/v1/processes/{pid}"),
            &[("X-Tensorlake-Sandbox-Id", sb)],
            None,
        );
        r.json()["status"] != "running"
    });
    pid
}

fn output(s: &Server, sb: &str, pid: u64, which: &str) -> Resp {
    let r = s.req(
        "GET",
        &format!("/api/v1/processes/{pid}/{which}"),
        &[("X-Tensorlake-Sandbox-Id", sb)],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r
}

fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

#[test]
fn output_of_a_process_is_kept_within_its_budget() {
    const MIB: usize = 1 << 20;
    let s = Server::start(&[]);
    let sb = s.sandbox();
    // 200 MiB of bytes that are not UTF-8 and contain no newline.
    let pid = run_in_background(
        &s,
        &sb,
        "head -c 209715200 /dev/zero | tr '\\000' '\\377'; echo end >&2",
    );
    let rss = rss_bytes(s.pid());
    assert!(rss < 200 * MIB as u64, "server RSS {} MiB", rss >> 20);
    let out = output(&s, &sb, pid, "stdout");
    assert!(
        out.body.len() <= MIB + 64 * 1024,
        "{} bytes",
        out.body.len()
    );
    let v = out.json();
    let kept: usize = v["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().len())
        .sum();
    assert!(kept > MIB / 2 && kept <= MIB, "{kept}");
    assert!(v["lines"][0].as_str().unwrap().starts_with('\u{fffd}'));
    assert_eq!(
        output(&s, &sb, pid, "stderr").json()["lines"],
        json!(["end"])
    );

    // The sandbox as a whole: 20 processes of 1.6 MB each keep at most 16 MiB together.
    let sb = s.sandbox();
    let line = "a".repeat(999);
    let script = format!("yes {line} | head -n 1600");
    let pids: Vec<u64> = (0..20)
        .map(|_| run_in_background(&s, &sb, &script))
        .collect();
    let total: usize = pids
        .iter()
        .map(|pid| {
            output(&s, &sb, *pid, "output").json()["lines"]
                .as_array()
                .unwrap()
                .iter()
                .map(|l| l.as_str().unwrap().len())
                .sum::<usize>()
        })
        .sum();
    assert!(total <= 16 * MIB, "{total} bytes kept in one sandbox");
    assert!(total > 8 * MIB, "{total}");
    // The newest process kept its newest lines.
    let last = output(&s, &sb, *pids.last().unwrap(), "stdout").json();
    assert_eq!(
        last["lines"].as_array().unwrap().last().unwrap(),
        &json!(line)
    );
}

fn mode(p: &Path) -> u32 {
    std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o7777
}

/// Every entry of the data directory that the server keeps: top level, and the archives.
fn assert_private(data: &Path) {
    assert_eq!(mode(data), 0o700, "{}", data.display());
    for dir in [data.to_path_buf(), data.join("snapshots"), data.join("tmp")] {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            let m = std::fs::symlink_metadata(e.path()).unwrap();
            let want = if m.is_dir() { 0o700 } else { 0o600 };
            assert_eq!(mode(&e.path()), want, "{}", e.path().display());
        }
    }
}

#[test]
fn the_data_directory_is_private() {
    let s = Server::start(&[]);
    for f in ["lock", "state.sqlite", "sandboxes", "snapshots", "tmp"] {
        assert!(s.data.join(f).exists(), "{f}");
    }
    assert_private(&s.data);
    let sb = s.sandbox();
    let snap = s.snapshot(&sb);
    let done = s.wait_snapshot(&snap, &["completed"]);
    assert_eq!(
        std::fs::read_dir(s.data.join("snapshots")).unwrap().count(),
        1
    );
    assert_private(&s.data);
    assert!(s.data.join("state.sqlite-wal").exists() || s.data.join("state.sqlite-shm").exists());

    // What an older server left world-readable is tightened at the next start.
    let data = s.stop();
    let loosen =
        |p: &Path, m: u32| std::fs::set_permissions(p, PermissionsExt::from_mode(m)).unwrap();
    loosen(&data, 0o755);
    for e in std::fs::read_dir(&data).unwrap().flatten() {
        let dir = e.file_type().unwrap().is_dir();
        loosen(&e.path(), if dir { 0o755 } else { 0o644 });
    }
    for e in std::fs::read_dir(data.join("snapshots")).unwrap().flatten() {
        loosen(&e.path(), 0o644);
    }
    let s = Server::start_in(data, &[], &[]);
    assert_private(&s.data);
    assert_eq!(
        s.get(&format!("{P}/snapshots/{snap}")).json()["snapshot_uri"],
        done["snapshot_uri"]
    );
}

#[test]
fn snapshot_uri_reveals_no_host_path() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let snap = s.snapshot(&sb);
    let done = s.wait_snapshot(&snap, &["completed"]);
    let uri = done["snapshot_uri"].as_str().unwrap();
    let data = s.data.canonicalize().unwrap();
    assert!(!uri.contains(data.to_str().unwrap()), "{uri}");
    assert!(!uri.contains("file:"), "{uri}");
    let name = uri.strip_prefix("tensorlake-local://snapshots/").unwrap();
    assert!(!name.contains('/'), "{uri}");
    assert!(s.data.join("snapshots").join(name).is_file());
}

#[test]
fn arguments_the_kernel_would_refuse_are_a_4xx() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let run = |body: &Value| {
        let b = body.to_string();
        s.req(
            "POST",
            "/api/v1/processes/run",
            &[
                ("X-Tensorlake-Sandbox-Id", sb.as_str()),
                ("Content-Type", "application/json"),
            ],
            Some(b.as_bytes()),
        )
    };
    let big = "x".repeat(200_000);
    let many: serde_json::Map<String, Value> = (0..70_000)
        .map(|i| (format!("v{i:06}"), json!("")))
        .collect();
    let cases = [
        (json!({"command": "echo", "args": [big]}), "args[0]"),
        (json!({"command": "true", "env": {"BIG": big}}), "BIG"),
        (json!({"command": "true", "env": many}), "too large"),
        (json!({"command": "echo", "args": ["a\u{0}b"]}), "NUL"),
        (json!({"command": "true", "env": {"A\u{0}": "x"}}), "env"),
        (
            json!({"command": "true", "working_dir": "/no/such/dir"}),
            "working_dir",
        ),
        (
            json!({"command": "true", "working_dir": "relative"}),
            "working_dir",
        ),
    ];
    for (body, says) in &cases {
        let r = run(body);
        assert!(
            (400..500).contains(&r.status),
            "{says}: {} {}",
            r.status,
            r.text()
        );
        assert!(r.text().contains(says), "{says}: {}", r.text());
    }
    // The largest allowed argument still runs.
    let fits = "y".repeat(120_000);
    let r = s.run_body(
        &sb,
        &json!({"command": "sh", "args": ["-c", "echo ${#1}", "sh", fits]}),
    );
    assert_eq!(r.stdout, vec!["120000"]);
    // The sandbox and server are fine afterwards.
    assert_eq!(s.sh(&sb, "echo ok").stdout, vec!["ok"]);
}
