//! Background processes as a live client uses them: stdin pipes, follow streams that deliver
//! lines as they are written, real signals, immediate kills, `user`, and suspend/resume that
//! freeze a sandbox's processes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{eventually, Server};
use serde_json::{json, Value};

const P: &str = "/v1/namespaces/default";

fn hdr(sb: &str) -> Vec<(&str, &str)> {
    vec![
        ("X-Tensorlake-Sandbox-Id", sb),
        ("Content-Type", "application/json"),
    ]
}

/// Starts a background process; returns its ProcessInfo.
fn start(s: &Server, sb: &str, body: Value) -> Value {
    let b = body.to_string();
    let r = s.req("POST", "/api/v1/processes", &hdr(sb), Some(b.as_bytes()));
    assert_eq!(r.status, 201, "{}", r.text());
    r.json()
}

fn info(s: &Server, sb: &str, pid: i64) -> Value {
    let r = s.req("GET", &format!("/api/v1/processes/{pid}"), &hdr(sb), None);
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn wait_ended(s: &Server, sb: &str, pid: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let v = info(s, sb, pid);
        if v["status"] != "running" {
            return v;
        }
        assert!(Instant::now() < deadline, "process {pid} still running");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn stdout_of(s: &Server, sb: &str, pid: i64) -> Vec<String> {
    let r = s.req(
        "GET",
        &format!("/api/v1/processes/{pid}/stdout"),
        &hdr(sb),
        None,
    );
    r.json()["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap().to_string())
        .collect()
}

fn signal(s: &Server, sb: &str, pid: i64, sig: i32) -> common::Resp {
    let b = json!({ "signal": sig }).to_string();
    s.req(
        "POST",
        &format!("/api/v1/processes/{pid}/signal"),
        &hdr(sb),
        Some(b.as_bytes()),
    )
}

/// Waits until the process's stdout holds `line`.
fn wait_line(s: &Server, sb: &str, pid: i64, line: &str) {
    eventually(15, line, || stdout_of(s, sb, pid).iter().any(|l| l == line));
}

#[test]
fn stdin_pipe_is_written_closed_and_reported() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let p = start(&s, &sb, json!({"command": "cat", "stdin_mode": "pipe"}));
    let pid = p["pid"].as_i64().unwrap();
    assert_eq!(p["stdin_writable"], true, "{p}");
    let path = format!("/api/v1/processes/{pid}/stdin");
    let r = s.req(
        "POST",
        &path,
        &[("X-Tensorlake-Sandbox-Id", &sb)],
        Some(b"hello\nwor"),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let r = s.req(
        "POST",
        &path,
        &[("X-Tensorlake-Sandbox-Id", &sb)],
        Some(b"ld\n"),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    wait_line(&s, &sb, pid, "world");
    let close = format!("/api/v1/processes/{pid}/stdin/close");
    let r = s.req(
        "POST",
        &close,
        &[("X-Tensorlake-Sandbox-Id", &sb)],
        Some(b""),
    );
    assert_eq!(r.status, 204, "{}", r.text());
    let end = wait_ended(&s, &sb, pid);
    assert_eq!(end["exit_code"], 0, "{end}");
    assert_eq!(end["stdin_writable"], false);
    assert_eq!(stdout_of(&s, &sb, pid), vec!["hello", "world"]);
    // Closed, and ended: clear 409s.
    let r = s.req(
        "POST",
        &path,
        &[("X-Tensorlake-Sandbox-Id", &sb)],
        Some(b"x"),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "PROCESS_EXITED");
}

#[test]
fn stdin_refusals_are_clear_4xx() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let p = start(&s, &sb, json!({"command": "sleep", "args": ["30"]}));
    let pid = p["pid"].as_i64().unwrap();
    assert_eq!(p["stdin_writable"], false);
    let path = format!("/api/v1/processes/{pid}/stdin");
    let r = s.req(
        "POST",
        &path,
        &[("X-Tensorlake-Sandbox-Id", &sb)],
        Some(b"x"),
    );
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "STDIN_CLOSED");
    let p2 = start(&s, &sb, json!({"command": "cat", "stdin_mode": "pipe"}));
    let big = vec![b'a'; (1 << 20) + 1];
    let path2 = format!("/api/v1/processes/{}/stdin", p2["pid"]);
    let r = s.req(
        "POST",
        &path2,
        &[("X-Tensorlake-Sandbox-Id", &sb)],
        Some(&big),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    let b = json!({"command": "cat", "stdin_mode": "tty"}).to_string();
    let r = s.req("POST", "/api/v1/processes", &hdr(&sb), Some(b.as_bytes()));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("stdin_mode"), "{}", r.text());
    s.delete(&format!("{P}/sandboxes/{sb}"));
}

/// Opens a follow stream and returns the socket (response head not yet read).
fn open_follow(s: &Server, sb: &str, pid: i64, which: &str) -> TcpStream {
    let mut t = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    t.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let req = format!(
        "GET /api/v1/processes/{pid}/{which}/follow HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Tensorlake-Sandbox-Id: {sb}\r\nAccept: text/event-stream\r\nConnection: close\r\n\r\n"
    );
    t.write_all(req.as_bytes()).unwrap();
    t
}

/// Reads from `t` until `needle` appears; returns everything read.
fn read_until(t: &mut TcpStream, needle: &str, limit: Duration) -> String {
    let start = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while start.elapsed() < limit {
        match t.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
        if String::from_utf8_lossy(&got).contains(needle) {
            break;
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

#[test]
fn follow_delivers_each_line_as_it_is_written_then_eof() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let p = start(
        &s,
        &sb,
        json!({"command": "sh", "args": ["-c", "echo first; echo err >&2; sleep 3; echo second"]}),
    );
    let pid = p["pid"].as_i64().unwrap();
    let started = Instant::now();
    let mut t = open_follow(&s, &sb, pid, "output");
    let head = read_until(&mut t, "\"first\"", Duration::from_secs(10));
    assert!(head.contains("text/event-stream"), "{head}");
    assert!(head.contains("event: output"), "{head}");
    assert!(head.contains("\"stream\":\"stdout\""), "{head}");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "the first line came only after the sleep ({:?})",
        started.elapsed()
    );
    assert!(!head.contains("second"));
    let rest = read_until(&mut t, "event: eof", Duration::from_secs(20));
    assert!(rest.contains("\"second\""), "{rest}");
    assert!(rest.contains("event: eof"), "{rest}");
    // stderr-only follow of the ended process: the kept line, then eof at once.
    let mut t = open_follow(&s, &sb, pid, "stderr");
    let all = read_until(&mut t, "event: eof", Duration::from_secs(10));
    assert!(all.contains("\"err\""), "{all}");
    assert!(!all.contains("\"first\""), "{all}");
    assert!(all.contains("event: eof"), "{all}");
    s.delete(&format!("{P}/sandboxes/{sb}"));
}

fn rss_kb(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn following_a_process_that_prints_a_gigabyte_keeps_memory_flat() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    // 1 GiB of 1 KiB lines.
    let p = start(
        &s,
        &sb,
        json!({"command": "sh", "args": ["-c", "head -c 1073741824 /dev/zero | tr '\\0' 'x' | fold -w 1023"]}),
    );
    let pid = p["pid"].as_i64().unwrap();
    let mut t = open_follow(&s, &sb, pid, "stdout");
    let before = rss_kb(s.pid());
    let mut buf = vec![0u8; 1 << 16];
    let mut read = 0usize;
    let mut peak = before;
    let deadline = Instant::now() + Duration::from_secs(240);
    // A slow reader: the server must drop lines for it, not queue them.
    loop {
        match t.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => read += n,
        }
        if read % (64 << 20) < (1 << 16) {
            peak = peak.max(rss_kb(s.pid()));
        }
        assert!(Instant::now() < deadline, "follow did not end");
    }
    peak = peak.max(rss_kb(s.pid()));
    let end = wait_ended(&s, &sb, pid);
    assert_eq!(end["exit_code"], 0, "{end}");
    assert!(
        peak < before + 200 * 1024,
        "server grew from {before} kB to {peak} kB while following"
    );
    s.delete(&format!("{P}/sandboxes/{sb}"));
}

#[test]
fn signals_reach_the_command_and_a_trapping_shell_sees_them() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let script = "trap 'echo got-usr1' USR1; trap 'echo got-hup' HUP; trap 'echo got-term; exit 7' TERM; echo ready; while :; do sleep 0.05; done";
    let p = start(&s, &sb, json!({"command": "sh", "args": ["-c", script]}));
    let pid = p["pid"].as_i64().unwrap();
    wait_line(&s, &sb, pid, "ready");
    for (sig, line) in [(libc::SIGUSR1, "got-usr1"), (libc::SIGHUP, "got-hup")] {
        let r = signal(&s, &sb, pid, sig);
        assert_eq!(r.status, 200, "{}", r.text());
        wait_line(&s, &sb, pid, line);
        assert_eq!(info(&s, &sb, pid)["status"], "running");
    }
    assert_eq!(signal(&s, &sb, pid, libc::SIGTERM).status, 200);
    let end = wait_ended(&s, &sb, pid);
    assert_eq!(end["status"], "exited", "{end}");
    assert_eq!(end["exit_code"], 7, "{end}");
    assert!(stdout_of(&s, &sb, pid).contains(&"got-term".to_string()));

    // Not trapped: ends as a normal process would, reported as the signal.
    for sig in [libc::SIGINT, libc::SIGUSR2, libc::SIGTERM] {
        let p = start(&s, &sb, json!({"command": "sleep", "args": ["30"]}));
        let pid = p["pid"].as_i64().unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(signal(&s, &sb, pid, sig).status, 200);
        let end = wait_ended(&s, &sb, pid);
        assert_eq!(end["status"], "signaled", "{sig}: {end}");
        assert_eq!(end["signal"], sig, "{end}");
    }
    let r = signal(&s, &sb, pid, 64);
    assert_eq!(r.status, 400, "{}", r.text());
    s.delete(&format!("{P}/sandboxes/{sb}"));
}

#[test]
fn sigstop_and_sigcont_pause_and_continue_the_command() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let p = start(
        &s,
        &sb,
        json!({"command": "sh", "args": ["-c", "i=0; while :; do i=$((i+1)); echo $i; sleep 0.05; done"]}),
    );
    let pid = p["pid"].as_i64().unwrap();
    wait_line(&s, &sb, pid, "3");
    assert_eq!(signal(&s, &sb, pid, libc::SIGSTOP).status, 200);
    std::thread::sleep(Duration::from_millis(300));
    let n1 = stdout_of(&s, &sb, pid).len();
    std::thread::sleep(Duration::from_millis(700));
    let n2 = stdout_of(&s, &sb, pid).len();
    assert_eq!(n1, n2, "it printed while stopped");
    assert_eq!(info(&s, &sb, pid)["status"], "running");
    assert_eq!(signal(&s, &sb, pid, libc::SIGCONT).status, 200);
    eventually(10, "output after SIGCONT", || {
        stdout_of(&s, &sb, pid).len() > n2 + 2
    });
    s.delete(&format!("{P}/sandboxes/{sb}"));
}

#[test]
fn a_kill_right_after_start_is_never_lost() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    for i in 0..15 {
        let p = start(&s, &sb, json!({"command": "sleep", "args": ["60"]}));
        let pid = p["pid"].as_i64().unwrap();
        let t = Instant::now();
        let r = if i % 2 == 0 {
            s.req(
                "DELETE",
                &format!("/api/v1/processes/{pid}"),
                &hdr(&sb),
                None,
            )
        } else {
            signal(&s, &sb, pid, libc::SIGKILL)
        };
        assert!(r.status == 204 || r.status == 200, "{}", r.text());
        // Generous bound (the machine is shared); the old code took 5 s.
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        std::thread::sleep(Duration::from_millis(500));
        let v = info(&s, &sb, pid);
        assert_eq!(v["status"], "signaled", "try {i}: {v}");
        assert_eq!(v["signal"], 9, "{v}");
    }
    // Nothing of those jails is left.
    let r = s.run(&sb, "sh", &["-c", "ls /proc | grep -c '^[0-9]'"]);
    assert!(r.stdout[0].parse::<i64>().unwrap() <= 4, "{:?}", r.stdout);
    s.delete(&format!("{P}/sandboxes/{sb}"));
}

#[test]
fn user_runs_the_command_as_that_uid_and_names_come_from_etc_passwd() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let r = s.run_body(
        &sb,
        &json!({"command": "id", "args": ["-u"], "user": "1000"}),
    );
    assert_eq!(r.stdout, vec!["1000"], "{:?}", r.events);
    let r = s.run_body(
        &sb,
        &json!({"command": "id", "user": {"uid": 1234, "gid": 99}}),
    );
    assert!(r.stdout[0].starts_with("uid=1234"), "{:?}", r.stdout);
    assert!(r.stdout[0].contains("gid=99"), "{:?}", r.stdout);
    let r = s.run_body(
        &sb,
        &json!({"command": "id", "args": ["-u"], "user": "root"}),
    );
    assert_eq!(r.stdout, vec!["0"]);
    // Names: none until the sandbox has an /etc/passwd naming them.
    let b = json!({"command": "id", "user": "app"}).to_string();
    let resp = s.req(
        "POST",
        "/api/v1/processes/run",
        &hdr(&sb),
        Some(b.as_bytes()),
    );
    assert_eq!(resp.status, 400, "{}", resp.text());
    assert_eq!(resp.json()["code"], "INVALID_USER");
    assert_eq!(
        s.write_file(
            &sb,
            "/etc/passwd",
            b"root:x:0:0::/root:/bin/sh\napp:x:1001:1002::/home/app:/bin/sh\n"
        )
        .status,
        204
    );
    let r = s.run_body(&sb, &json!({"command": "id", "user": "app"}));
    assert!(r.stdout[0].starts_with("uid=1001"), "{:?}", r.stdout);
    let b = json!({"command": "id", "user": "99999"}).to_string();
    let resp = s.req("POST", "/api/v1/processes", &hdr(&sb), Some(b.as_bytes()));
    assert_eq!(resp.status, 400, "{}", resp.text());
    s.delete(&format!("{P}/sandboxes/{sb}"));
}

fn create(s: &Server, body: Value) -> String {
    let r = s.post_json(&format!("{P}/sandboxes"), &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["sandbox_id"].as_str().unwrap().to_string();
    eventually(10, "running", || status(s, &id) == "running");
    id
}

fn status(s: &Server, id: &str) -> String {
    s.get(&format!("{P}/sandboxes/{id}")).json()["status"]
        .as_str()
        .unwrap()
        .to_string()
}

fn counter(s: &Server, sb: &str) -> i64 {
    let path = s.data.join("sandboxes").join(sb).join("root/tmp/c");
    std::fs::read_to_string(&path)
        .unwrap_or_default()
        .trim()
        .parse()
        .unwrap_or(0)
}

#[test]
fn suspend_freezes_processes_and_resume_thaws_them() {
    let s = Server::start(&[]);
    let sb = create(&s, json!({"name": "frozen-one"}));
    let p = start(
        &s,
        &sb,
        json!({"command": "sh", "args": ["-c", "i=0; while :; do i=$((i+1)); echo $i > /tmp/c; sleep 0.05; done"]}),
    );
    let pid = p["pid"].as_i64().unwrap();
    eventually(10, "counting", || counter(&s, &sb) > 3);
    let r = s.post_empty(&format!("{P}/sandboxes/{sb}/suspend"));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(r.json()["status"], "suspending");
    assert_eq!(status(&s, &sb), "suspended");
    let r = s.req("GET", "/api/v1/processes", &hdr(&sb), None);
    assert_eq!(r.status, 409, "{}", r.text());
    assert_eq!(r.json()["code"], "SANDBOX_NOT_RUNNING");
    let frozen_at = counter(&s, &sb);
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(counter(&s, &sb), frozen_at, "it ran while suspended");
    let r = s.post_empty(&format!("{P}/sandboxes/{sb}/resume"));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(status(&s, &sb), "running");
    // The same process goes on, and the files survived.
    eventually(10, "counting again", || counter(&s, &sb) > frozen_at + 3);
    assert_eq!(info(&s, &sb, pid)["status"], "running");
    s.delete(&format!("{P}/sandboxes/{sb}"));
    eventually(10, "terminated", || status(&s, &sb) == "terminated");
}

#[test]
fn timeout_secs_terminates_an_unnamed_sandbox_and_suspends_a_named_one() {
    let s = Server::start(&[]);
    let t0 = Instant::now();
    let plain = create(&s, json!({"timeout_secs": 3}));
    let named = create(&s, json!({"timeout_secs": 3, "name": "times-out"}));
    std::thread::sleep(Duration::from_millis(2000).saturating_sub(t0.elapsed()));
    assert_eq!(status(&s, &plain), "running");
    assert_eq!(status(&s, &named), "running");
    eventually(10, "timed out", || {
        status(&s, &plain) == "terminated" && status(&s, &named) == "suspended"
    });
    // Exact to a second (and a generous margin for a busy machine).
    assert!(
        t0.elapsed() < Duration::from_millis(5500),
        "{:?}",
        t0.elapsed()
    );
    let v = s.get(&format!("{P}/sandboxes/{plain}")).json();
    assert_eq!(v["termination_reason"], "timeout", "{v}");
    assert_eq!(v["outcome"], "Success(Timeout)", "{v}");
    let n = s.get(&format!("{P}/sandboxes/{named}")).json();
    assert!(n["outcome"].is_null(), "a suspended sandbox has no terminal outcome: {n}");
    // A resume gives it its timeout again, counted from the resume.
    let r = s.post_empty(&format!("{P}/sandboxes/{named}/resume"));
    assert_eq!(r.status, 202, "{}", r.text());
    let resumed = Instant::now();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(status(&s, &named), "running");
    eventually(10, "suspended again", || status(&s, &named) == "suspended");
    assert!(resumed.elapsed() >= Duration::from_millis(2500));
    s.delete(&format!("{P}/sandboxes/{named}"));
}

#[test]
fn a_timeout_survives_a_restart() {
    let s = Server::start(&[]);
    let named = create(&s, json!({"timeout_secs": 4, "name": "restarted"}));
    let created = Instant::now();
    let data = s.stop();
    let s = Server::start_in(data, &[], &[]);
    assert_eq!(status(&s, &named), "running");
    eventually(15, "suspended after restart", || {
        status(&s, &named) == "suspended"
    });
    assert!(created.elapsed() >= Duration::from_millis(3500));
    s.delete(&format!("{P}/sandboxes/{named}"));
}
