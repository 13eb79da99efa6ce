//! Route-by-route wire tests: keys, types, status codes and content types, per
//! docs/wire-protocol.md sections 2, 3 and 5.

mod common;

use common::{request, Server};
use serde_json::{json, Value};

const P: &str = "/v1/namespaces/default";

fn keys(v: &Value) -> Vec<String> {
    let mut k: Vec<String> = v.as_object().unwrap().keys().cloned().collect();
    k.sort();
    k
}

#[test]
fn first_stdout_line_names_the_port_and_help_documents_flags() {
    let s = Server::start(&[]);
    assert!(s.port > 0);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlake-local"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--port",
        "--data-dir",
        "--api-key",
        "--cors-origin",
        "--static",
        "--snapshot-local-ready-ms",
        "--snapshot-completed-ms",
        "--sandbox-startup-ms",
        "TENSORLAKE_LOCAL_BWRAP",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
}

#[test]
fn create_get_list_delete_sandbox() {
    let s = Server::start(&[]);
    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({"resources": {"cpus": 2.0, "memory_mb": 2048}, "image": "ubuntu-minimal"}),
    );
    assert_eq!(r.status, 200);
    assert!(r.content_type().starts_with("application/json"));
    let v = r.json();
    assert!(
        v.get("id").is_none(),
        "create response uses sandbox_id only: {v}"
    );
    let id = v["sandbox_id"].as_str().unwrap().to_string();
    assert_eq!(v["status"], "running");
    assert_eq!(v["sandbox_url"], format!("http://127.0.0.1:{}", s.port));
    assert!(
        id.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'),
        "id must be a DNS label: {id}"
    );

    let g = s.get(&format!("{P}/sandboxes/{id}"));
    assert_eq!(g.status, 200);
    let info = g.json();
    assert_eq!(info["id"], id.as_str());
    assert!(
        info.get("sandbox_id").is_none(),
        "never both id and sandbox_id: {info}"
    );
    assert_eq!(info["namespace"], "default");
    assert_eq!(info["status"], "running");
    assert_eq!(info["image"], "ubuntu-minimal");
    assert_eq!(info["resources"]["cpus"], 2.0);
    assert_eq!(info["resources"]["memory_mb"], 2048);
    assert!(info["resources"]["disk_mb"].is_i64());
    assert_eq!(
        info["resources"]["disk_mb"],
        info["resources"]["ephemeral_disk_mb"]
    );
    assert!(info["created_at"].is_i64(), "epoch-ms integer: {info}");
    assert!(info["created_at"].as_i64().unwrap() > 1_600_000_000_000);
    assert_eq!(info["sandbox_url"], format!("http://127.0.0.1:{}", s.port));
    assert_eq!(info["allow_unauthenticated_access"], false);
    assert_eq!(info["file_systems"], json!([]));

    let l = s.get(&format!("{P}/sandboxes"));
    assert_eq!(l.status, 200);
    let list = l.json();
    assert_eq!(list["sandboxes"].as_array().unwrap().len(), 1);
    assert_eq!(list["sandboxes"][0]["id"], id.as_str());

    let d = s.delete(&format!("{P}/sandboxes/{id}"));
    assert_eq!(d.status, 200);
    assert!(d.body.is_empty());
    // Idempotent, and the record says terminated.
    assert_eq!(s.delete(&format!("{P}/sandboxes/{id}")).status, 200);
    let g = s.get(&format!("{P}/sandboxes/{id}")).json();
    assert_eq!(g["status"], "terminated");
    assert!(g["terminated_at"].is_i64());
    assert!(g["sandbox_url"].is_null());
    assert_eq!(
        s.get(&format!("{P}/sandboxes")).json()["sandboxes"],
        json!([])
    );
}

#[test]
fn bare_paths_are_the_default_namespace_and_namespaces_are_separate() {
    let s = Server::start(&[]);
    let r = s.post_json(
        "/sandboxes",
        &json!({"resources": {"cpus": 1.0, "memory_mb": 1024}}),
    );
    assert_eq!(r.status, 200);
    let id = r.json()["sandbox_id"].as_str().unwrap().to_string();
    assert_eq!(s.get(&format!("{P}/sandboxes/{id}")).status, 200);
    assert_eq!(s.get(&format!("/sandboxes/{id}")).status, 200);
    let other = s.get(&format!("/v1/namespaces/other/sandboxes/{id}"));
    assert_eq!(other.status, 404);
    assert!(other.content_type().starts_with("text/plain"));
    assert_eq!(
        s.get("/v1/namespaces/other/sandboxes").json()["sandboxes"],
        json!([])
    );
    let bad = s.get("/v1/namespaces/bad%20ns/sandboxes");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("namespace"), "{}", bad.text());
}

#[test]
fn unknown_ids_are_plain_text_404s() {
    let s = Server::start(&[]);
    for (method, path, want) in [
        (
            "GET",
            format!("{P}/sandboxes/nope"),
            "Sandbox not found: nope",
        ),
        (
            "DELETE",
            format!("{P}/sandboxes/nope"),
            "Sandbox not found: nope",
        ),
        (
            "POST",
            format!("{P}/sandboxes/nope/snapshot"),
            "Sandbox not found: nope",
        ),
        (
            "GET",
            format!("{P}/snapshots/snap-nope"),
            "Snapshot not found: snap-nope",
        ),
        (
            "DELETE",
            format!("{P}/snapshots/snap-nope"),
            "Snapshot not found: snap-nope",
        ),
    ] {
        let r = s.req(
            method,
            &path,
            &[],
            if method == "POST" { Some(b"") } else { None },
        );
        assert_eq!(r.status, 404, "{method} {path}");
        assert!(
            r.content_type().starts_with("text/plain"),
            "{method} {path}: {}",
            r.content_type()
        );
        assert_eq!(r.text(), want);
    }
    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({"snapshot_id": "snap-nope"}),
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.text(), "Snapshot not found: snap-nope");
}

#[test]
fn malformed_and_invalid_json_name_the_problem() {
    let s = Server::start(&[]);
    let r = s.req(
        "POST",
        &format!("{P}/sandboxes"),
        &[("Content-Type", "application/json")],
        Some(b"{\"resources\": "),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().starts_with("malformed JSON body"), "{}", r.text());
    assert!(r.content_type().starts_with("text/plain"));

    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({"resources": {"cpus": "four"}}),
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("resources.cpus"), "{}", r.text());

    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({"resources": {"cpus": -1}}),
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("resources.cpus"), "{}", r.text());

    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({"resources": {"memory_mb": 1.5}}),
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("resources.memory_mb"), "{}", r.text());

    let r = s.post_json(&format!("{P}/sandboxes"), &json!({"name": "has space"}));
    assert_eq!(r.status, 422);
    assert!(r.text().contains("`name`"), "{}", r.text());

    let r = s.post_json(&format!("{P}/sandboxes"), &json!([1, 2]));
    assert_eq!(r.status, 422);

    let id = s.sandbox();
    let r = s.post_json(
        &format!("{P}/sandboxes/{id}/snapshot"),
        &json!({"snapshot_type": "disk"}),
    );
    assert_eq!(r.status, 422);
    assert!(r.text().contains("snapshot_type"), "{}", r.text());

    // Process routes answer JSON errors.
    let r = s.req(
        "POST",
        "/api/v1/processes/run",
        &[("X-Tensorlake-Sandbox-Id", id.as_str())],
        Some(b"{\"args\": []}"),
    );
    assert_eq!(r.status, 422);
    assert!(r.content_type().starts_with("application/json"));
    assert!(
        r.json()["error"].as_str().unwrap().contains("command"),
        "{}",
        r.text()
    );

    // No 5xx for any of it, and the server is still there.
    assert_eq!(s.get(&format!("{P}/sandboxes")).status, 200);
}

#[test]
fn oversized_bodies_are_413() {
    let s = Server::start(&[]);
    let big = vec![b' '; 2 * 1024 * 1024];
    let r = s.req(
        "POST",
        &format!("{P}/sandboxes"),
        &[("Content-Type", "application/json")],
        Some(&big),
    );
    assert_eq!(r.status, 413);
    assert!(r.text().contains("limit"), "{}", r.text());
    // Chunked, without a Content-Length, is counted as it arrives.
    let mut chunked = Vec::new();
    for _ in 0..40 {
        chunked.extend_from_slice(format!("{:x}\r\n", 64 * 1024).as_bytes());
        chunked.extend_from_slice(&vec![b' '; 64 * 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let r = s.req(
        "POST",
        &format!("{P}/sandboxes"),
        &[("Transfer-Encoding", "chunked")],
        Some(&chunked),
    );
    assert_eq!(r.status, 413);
    assert_eq!(s.get(&format!("{P}/sandboxes")).status, 200);
}

#[test]
fn wrong_method_and_unknown_paths() {
    let s = Server::start(&[]);
    let r = s.req("PUT", &format!("{P}/snapshots"), &[], Some(b""));
    assert_eq!(r.status, 405);
    assert!(r.text().contains("not allowed"), "{}", r.text());
    let r = s.get("/nothing/here");
    assert_eq!(r.status, 404);
    let id = s.sandbox();
    let r = s.req(
        "GET",
        "/api/v1/nothing",
        &[("X-Tensorlake-Sandbox-Id", id.as_str())],
        None,
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "NOT_FOUND");
}

#[test]
fn restore_requests_use_the_sdk_shapes() {
    // The exact bodies the official Python SDK sends (captured from tensorlake==0.5.163).
    let s = Server::start(&[]);
    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({"resources":{"cpus":1.0,"memory_mb":1024}}),
    );
    let id = r.json()["sandbox_id"].as_str().unwrap().to_string();
    let snap = s.snapshot(&id);
    s.wait_snapshot(&snap, &["local_ready", "completed"]);
    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({"resources":{"cpus":4.0,"memory_mb":2048},"snapshot_id": snap}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let keys = keys(&r.json());
    for k in ["sandbox_id", "status", "sandbox_url"] {
        assert!(keys.contains(&k.to_string()), "{keys:?}");
    }
}

#[test]
fn startup_delay_gives_pending_then_running() {
    let s = Server::start(&["--sandbox-startup-ms", "1000"]);
    let r = s.post_json(&format!("{P}/sandboxes"), &json!({}));
    let v = r.json();
    assert_eq!(v["status"], "pending");
    assert!(v["sandbox_url"].is_null());
    let id = v["sandbox_id"].as_str().unwrap().to_string();
    let g = s.get(&format!("{P}/sandboxes/{id}")).json();
    assert_eq!(g["status"], "pending");
    let early = s.req(
        "POST",
        "/api/v1/processes/run",
        &[("X-Tensorlake-Sandbox-Id", id.as_str())],
        Some(b"{\"command\":\"true\"}"),
    );
    assert_eq!(early.status, 409);
    assert_eq!(early.json()["code"], "SANDBOX_NOT_RUNNING");
    let snap = s.post_empty(&format!("{P}/sandboxes/{id}/snapshot"));
    assert_eq!(snap.status, 400);
    assert_eq!(
        snap.text(),
        "Cannot snapshot a sandbox that is not yet running"
    );
    std::thread::sleep(std::time::Duration::from_millis(1050));
    let g = s.get(&format!("{P}/sandboxes/{id}")).json();
    assert_eq!(g["status"], "running");
    assert_eq!(g["sandbox_url"], format!("http://127.0.0.1:{}", s.port));
    // The timing knob can be changed at run time.
    let t = s.put_json("/_admin/timing", &json!({"sandbox_startup_ms": 0}));
    assert_eq!(t.status, 200);
    assert_eq!(t.json()["sandbox_startup_ms"], 0);
    assert_eq!(
        s.post_json(&format!("{P}/sandboxes"), &json!({})).json()["status"],
        "running"
    );
}

#[test]
fn suspend_resume_and_update() {
    let s = Server::start(&[]);
    let id = s.sandbox();
    let r = s.post_empty(&format!("{P}/sandboxes/{id}/suspend"));
    assert_eq!(r.status, 202);
    assert_eq!(
        s.get(&format!("{P}/sandboxes/{id}")).json()["status"],
        "suspended"
    );
    assert_eq!(
        s.post_empty(&format!("{P}/sandboxes/{id}/suspend")).status,
        200
    );
    let run = s.req(
        "POST",
        "/api/v1/processes/run",
        &[("X-Tensorlake-Sandbox-Id", id.as_str())],
        Some(b"{\"command\":\"true\"}"),
    );
    assert_eq!(run.status, 409);
    let snap = s.post_empty(&format!("{P}/sandboxes/{id}/snapshot"));
    assert_eq!(snap.status, 400);
    assert_eq!(
        s.post_empty(&format!("{P}/sandboxes/{id}/resume")).status,
        202
    );
    assert_eq!(
        s.get(&format!("{P}/sandboxes/{id}")).json()["status"],
        "running"
    );
    assert_eq!(
        s.post_empty(&format!("{P}/sandboxes/{id}/resume")).status,
        200
    );

    let b = json!({"name": "my-env", "exposed_ports": [8080, 8080, 3000]}).to_string();
    let r = s.req(
        "PATCH",
        &format!("{P}/sandboxes/{id}"),
        &[("Content-Type", "application/json")],
        Some(b.as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["name"], "my-env");
    assert_eq!(r.json()["exposed_ports"], json!([3000, 8080]));
    // Found by name too, and a second sandbox cannot take the name.
    assert_eq!(
        s.get(&format!("{P}/sandboxes/my-env")).json()["id"],
        id.as_str()
    );
    let dup = s.post_json(&format!("{P}/sandboxes"), &json!({"name": "my-env"}));
    assert_eq!(dup.status, 409);

    s.delete(&format!("{P}/sandboxes/{id}"));
    assert_eq!(
        s.post_empty(&format!("{P}/sandboxes/{id}/resume")).status,
        400
    );
    assert_eq!(
        s.post_empty(&format!("{P}/sandboxes/{id}/snapshot")).text(),
        "Cannot snapshot a terminated sandbox"
    );
}

#[test]
fn run_streams_sse_frames_per_section_5_2() {
    let s = Server::start(&[]);
    let id = s.sandbox();
    let host = format!("{id}.local");
    let body = json!({"command": "sh", "args": ["-c", "echo one; echo two >&2; printf 'no newline'; exit 7"]}).to_string();
    // Addressed by Host, as the official SDK does on localhost.
    let r = s.req(
        "POST",
        "/api/v1/processes/run",
        &[
            ("Host", host.as_str()),
            ("Content-Type", "application/json"),
            ("Accept", "text/event-stream"),
        ],
        Some(body.as_bytes()),
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/event-stream"));
    assert!(r.complete);
    let text = r.text();
    assert!(text.starts_with("data: {"), "{text}");
    let run = common::Run::parse(&text);
    let started = &run.events[0];
    assert!(
        started["pid"].is_u64() && started["started_at"].is_i64(),
        "{started}"
    );
    assert_eq!(keys(started), vec!["pid", "started_at"]);
    for e in &run.events[1..run.events.len() - 1] {
        assert_eq!(keys(e), vec!["line", "stream", "timestamp"], "{e}");
        assert!(e["timestamp"].is_i64());
    }
    assert_eq!(run.stdout, vec!["one", "no newline"]);
    assert_eq!(run.stderr, vec!["two"]);
    assert_eq!(run.exit["exit_code"], 7);
    assert!(run.exit.get("signal").is_none());
}

#[test]
fn run_timeout_kills_and_reports_a_signal() {
    let s = Server::start(&[]);
    let id = s.sandbox();
    let t0 = std::time::Instant::now();
    let run = s.run_body(
        &id,
        &json!({"command": "sh", "args": ["-c", "echo started; sleep 30"], "timeout": 0.5}),
    );
    assert!(t0.elapsed().as_secs_f64() < 10.0);
    assert_eq!(run.stdout, vec!["started"]);
    assert_eq!(run.exit["signal"], 9);
    assert_eq!(run.exit["reason"], "timed_out");
    assert!(run.exit.get("exit_code").is_none());
}

#[test]
fn run_options_env_working_dir_and_errors() {
    let s = Server::start(&[]);
    let id = s.sandbox();
    s.sh(&id, "mkdir -p /work/sub");
    let run = s.run_body(&id, &json!({"command": "sh", "args": ["-c", "echo $GREETING; pwd"], "env": {"GREETING": "hi"}, "working_dir": "/work/sub"}));
    assert_eq!(run.stdout, vec!["hi", "/work/sub"]);
    assert_eq!(run.code(), 0);
    // No shell: the command is exec'd as given.
    let run = s.run(&id, "echo", &["$HOME", "a b"]);
    assert_eq!(run.stdout, vec!["$HOME a b"]);

    let post = |body: Value| {
        let b = body.to_string();
        s.req(
            "POST",
            "/api/v1/processes/run",
            &[("X-Tensorlake-Sandbox-Id", id.as_str())],
            Some(b.as_bytes()),
        )
    };
    let r = post(json!({"command": "true", "working_dir": "/does/not/exist"}));
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "INVALID_WORKING_DIR");
    let r = post(json!({"command": "true", "timeout": -1}));
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("timeout"));
    let r = post(json!({"command": ""}));
    assert_eq!(r.status, 400);
    let r = post(json!({"command": "true", "env": {"A=B": "c"}}));
    assert_eq!(r.status, 400);
    let r = post(json!({"command": "true", "user": "no-such-user"}));
    assert_eq!(r.status, 400);
    assert!(r.json()["error"].as_str().unwrap().contains("user"));
    // Names come from the image's own /etc/passwd.
    let r = post(json!({"command": "true", "user": "nobody"}));
    assert_eq!(r.status, 200);
    let r = post(json!({"command": "true", "user": "root"}));
    assert_eq!(r.status, 200);
    // JSON nulls are "not given"; a zero timeout is no limit.
    let r = post(json!({"command": "echo", "args": null, "env": null, "timeout": 0}));
    assert_eq!(r.status, 200);
    assert!(r.text().contains("\"exit_code\":0"), "{}", r.text());
}

#[test]
fn daemon_routes_need_a_known_sandbox() {
    let s = Server::start(&[]);
    let r = s.req(
        "POST",
        "/api/v1/processes/run",
        &[("X-Tensorlake-Sandbox-Id", "sbx-unknown")],
        Some(b"{\"command\":\"true\"}"),
    );
    assert_eq!(r.status, 404);
    assert!(r.content_type().starts_with("application/json"));
    let v = r.json();
    assert_eq!(v["code"], "SANDBOX_NOT_FOUND");
    assert!(v["error"].as_str().unwrap().contains("sbx-unknown"));
    let r = s.req(
        "GET",
        "/api/v1/files?path=/x",
        &[("Host", "sbx-unknown.local")],
        None,
    );
    // A Host naming no sandbox is refused before routing (DNS rebinding), see hardening.rs.
    assert_eq!(r.status, 421);
    assert!(r.text().contains("names no sandbox"), "{}", r.text());
    let r = s.req("GET", "/api/v1/processes", &[], None);
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "SANDBOX_ID_REQUIRED");
    let id = s.sandbox();
    s.delete(&format!("{P}/sandboxes/{id}"));
    let r = s.req(
        "GET",
        "/api/v1/processes",
        &[("X-Tensorlake-Sandbox-Id", id.as_str())],
        None,
    );
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "SANDBOX_TERMINATED");
}

#[test]
fn background_processes_list_get_output_kill() {
    let s = Server::start(&[]);
    let id = s.sandbox();
    let h = [
        ("X-Tensorlake-Sandbox-Id", id.as_str()),
        ("Content-Type", "application/json"),
    ];
    let b =
        json!({"command": "sh", "args": ["-c", "echo ready; echo oops >&2; sleep 60"]}).to_string();
    let r = s.req("POST", "/api/v1/processes", &h, Some(b.as_bytes()));
    assert_eq!(r.status, 201, "{}", r.text());
    let info = r.json();
    let pid = info["pid"].as_u64().unwrap();
    assert_eq!(info["status"], "running");
    assert_eq!(info["command"], "sh");
    assert!(info["started_at"].is_i64());
    common::eventually(10, "output", || {
        s.req("GET", &format!("/api/v1/processes/{pid}/output"), &h, None)
            .json()["line_count"]
            == 2
    });
    let out = s
        .req("GET", &format!("/api/v1/processes/{pid}/stdout"), &h, None)
        .json();
    assert_eq!(
        out,
        json!({"pid": pid, "lines": ["ready"], "line_count": 1})
    );
    let err = s
        .req("GET", &format!("/api/v1/processes/{pid}/stderr"), &h, None)
        .json();
    assert_eq!(err["lines"], json!(["oops"]));
    let list = s.req("GET", "/api/v1/processes", &h, None).json();
    assert_eq!(list["processes"].as_array().unwrap().len(), 1);
    let sig = s.req(
        "POST",
        &format!("/api/v1/processes/{pid}/signal"),
        &h,
        Some(b"{\"signal\":15}"),
    );
    assert_eq!(sig.json(), json!({"success": true}));
    common::eventually(10, "process end", || {
        s.req("GET", &format!("/api/v1/processes/{pid}"), &h, None)
            .json()["status"]
            == "signaled"
    });
    let got = s
        .req("GET", &format!("/api/v1/processes/{pid}"), &h, None)
        .json();
    assert_eq!(got["signal"], 15);
    assert!(got["ended_at"].is_i64());
    assert_eq!(s.req("GET", "/api/v1/processes/999", &h, None).status, 404);
    assert_eq!(
        s.req("DELETE", &format!("/api/v1/processes/{pid}"), &h, None)
            .status,
        204
    );
    let health = s.req("GET", "/api/v1/health", &h, None);
    assert_eq!(health.json(), json!({"healthy": true}));
    let info = s.req("GET", "/api/v1/info", &h, None).json();
    assert_eq!(info["total_processes"], 1);
    assert_eq!(info["running_processes"], 0);
}

#[test]
fn file_api_round_trip() {
    let s = Server::start(&[]);
    let id = s.sandbox();
    let w = s.write_file(&id, "/data/deep/dir/f.bin", &[0, 1, 2, 255]);
    assert_eq!(w.status, 204, "{}", w.text());
    let r = s.read_file(&id, "/data/deep/dir/f.bin");
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("application/octet-stream"));
    assert_eq!(r.body, vec![0, 1, 2, 255]);
    // The command sees what the file API wrote, and the reverse.
    assert_eq!(s.run(&id, "cat", &["/data/deep/dir/f.bin"]).code(), 0);
    s.sh(&id, "echo from-cmd > /data/c.txt");
    assert_eq!(s.read_file(&id, "/data/c.txt").text(), "from-cmd\n");

    let l = s.req(
        "GET",
        "/api/v1/files/list?path=%2Fdata",
        &[("X-Tensorlake-Sandbox-Id", id.as_str())],
        None,
    );
    assert_eq!(l.status, 200);
    let v = l.json();
    assert_eq!(v["path"], "/data");
    let entries = v["entries"].as_array().unwrap();
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["c.txt", "deep"]);
    assert_eq!(entries[0]["is_dir"], false);
    assert_eq!(entries[0]["size"], 9);
    assert!(entries[0]["modified_at"].is_i64());
    assert_eq!(entries[1]["is_dir"], true);

    let r = s.read_file(&id, "/data/missing");
    assert_eq!(r.status, 404);
    assert_eq!(r.json()["code"], "NOT_FOUND");
    let r = s.read_file(&id, "/data");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "IS_DIRECTORY");
    let r = s.read_file(&id, "relative/path");
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["code"], "INVALID_PATH");
    let r = s.req(
        "GET",
        "/api/v1/files",
        &[("X-Tensorlake-Sandbox-Id", id.as_str())],
        None,
    );
    assert_eq!(r.status, 400);

    let d = s.req(
        "DELETE",
        "/api/v1/files?path=%2Fdata%2Fdeep",
        &[("X-Tensorlake-Sandbox-Id", id.as_str())],
        None,
    );
    assert_eq!(d.status, 204);
    assert_eq!(s.read_file(&id, "/data/deep/dir/f.bin").status, 404);
    let d = s.req(
        "DELETE",
        "/api/v1/files?path=%2Fdata%2Fdeep",
        &[("X-Tensorlake-Sandbox-Id", id.as_str())],
        None,
    );
    assert_eq!(d.status, 404);
}

#[test]
fn root_without_static_answers_and_each_response_echoes_traceparent() {
    let s = Server::start(&[]);
    let tp = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let r = request(
        s.port,
        "GET",
        &format!("{P}/snapshots"),
        &[("traceparent", tp)],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(r.json(), json!({"snapshots": []}));
    assert_eq!(r.header("traceparent"), Some(tp));
    let r = s.get("/");
    assert_eq!(r.status, 200);
    assert!(r.text().contains("tensorlake-local"));
}

#[test]
fn no_bad_input_gives_a_5xx() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let snap = s.snapshot(&sb);
    s.wait_snapshot(&snap, &["completed"]);
    let bodies: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"null".to_vec(),
        b"[]".to_vec(),
        b"\"str\"".to_vec(),
        b"{".to_vec(),
        b"{}".to_vec(),
        b"\xff\xfe\x00garbage".to_vec(),
        br#"{"resources":{"cpus":1e309}}"#.to_vec(),
        br#"{"resources":{"cpus":null,"memory_mb":99999999999999999999}}"#.to_vec(),
        br#"{"snapshot_id":12,"name":[],"image":{}}"#.to_vec(),
        br#"{"command":"\u0000","args":[1,2],"env":{"A":1}}"#.to_vec(),
        br#"{"command":"true","working_dir":"relative","timeout":"soon"}"#.to_vec(),
        br#"{"snapshot_type":null}"#.to_vec(),
        br#"{"signal":"TERM"}"#.to_vec(),
        format!("{{\"name\":\"{}\"}}", "ü".repeat(300)).into_bytes(),
        format!("{}{}", "[".repeat(5000), "]".repeat(5000)).into_bytes(),
    ];
    let routes = [
        ("POST", format!("{P}/sandboxes")),
        ("PATCH", format!("{P}/sandboxes/{sb}")),
        ("POST", format!("{P}/sandboxes/{sb}/snapshot")),
        ("POST", "/api/v1/processes/run".to_string()),
        ("POST", "/api/v1/processes".to_string()),
        ("POST", "/api/v1/processes/1/signal".to_string()),
        ("PUT", "/api/v1/files?path=%2Fx".to_string()),
        ("PUT", "/api/v1/files?path=%00".to_string()),
        ("GET", "/api/v1/files?path=%2F%2F%2F".to_string()),
        ("GET", "/api/v1/files/list?path=%2Fnope".to_string()),
        ("GET", "/api/v1/processes/abc".to_string()),
        (
            "GET",
            "/api/v1/processes/99999999999999999999/stdout".to_string(),
        ),
        ("POST", "/_admin/faults".to_string()),
        ("POST", "/_admin/seed-snapshots".to_string()),
        ("PUT", "/_admin/timing".to_string()),
        ("POST", "/_admin/snapshot-failures".to_string()),
        ("GET", format!("{P}/snapshots/%ff%fe")),
        ("GET", "/v1/namespaces/%ff/sandboxes".to_string()),
        ("DELETE", format!("{P}/sandboxes/%00")),
    ];
    for (method, path) in &routes {
        for body in &bodies {
            let r = s.req(
                method,
                path,
                &[
                    ("X-Tensorlake-Sandbox-Id", sb.as_str()),
                    ("Content-Type", "application/json"),
                ],
                Some(body),
            );
            assert!(
                r.status < 500,
                "{method} {path} {:?} -> {} {}",
                String::from_utf8_lossy(body),
                r.status,
                r.text()
            );
        }
    }
    assert_eq!(
        s.get(&format!("{P}/snapshots/{snap}")).status,
        200,
        "still serving"
    );
    let _ = s.delete(&format!("{P}/sandboxes/{sb}"));
}
