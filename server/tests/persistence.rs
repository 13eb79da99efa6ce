//! Durability: what survives a restart (clean or SIGKILL), and what a crash mid-snapshot becomes.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{eventually, Server};
use serde_json::json;

const P: &str = "/v1/namespaces/default";

#[test]
fn sandboxes_files_and_snapshots_survive_a_restart() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    s.sh(&sb, "mkdir -p /data && echo kept > /data/k.txt");
    let snap = s.snapshot(&sb);
    let before = s.wait_snapshot(&snap, &["completed"]);
    let gone = s.sandbox();
    s.delete(&format!("{P}/sandboxes/{gone}"));
    let suspended = s.sandbox();
    s.post_empty(&format!("{P}/sandboxes/{suspended}/suspend"));
    let data = s.stop();

    let s = Server::start_in(data, &[], &[]);
    // A live sandbox comes back running, with its files, usable at once.
    let info = s.get(&format!("{P}/sandboxes/{sb}")).json();
    assert_eq!(info["status"], "running");
    assert_eq!(
        info["sandbox_url"],
        format!("http://127.0.0.1:{}", s.port),
        "sandbox_url follows the new port"
    );
    assert_eq!(s.read_file(&sb, "/data/k.txt").text(), "kept\n");
    assert_eq!(s.sh(&sb, "cat /data/k.txt").stdout, vec!["kept"]);
    // Other stages are kept as they were.
    assert_eq!(
        s.get(&format!("{P}/sandboxes/{gone}")).json()["status"],
        "terminated"
    );
    assert_eq!(
        s.get(&format!("{P}/sandboxes/{suspended}")).json()["status"],
        "suspended"
    );
    // The snapshot is unchanged and restorable.
    assert_eq!(s.get(&format!("{P}/snapshots/{snap}")).json(), before);
    let r = s.post_json(&format!("{P}/sandboxes"), &json!({"snapshot_id": snap}));
    let restored = r.json()["sandbox_id"].as_str().unwrap().to_string();
    assert_eq!(s.read_file(&restored, "/data/k.txt").text(), "kept\n");
}

#[test]
fn sigkill_during_a_snapshot_marks_it_failed_at_the_next_start() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    // Enough incompressible data that archiving takes a while.
    s.sh(&sb, "head -c 60000000 /dev/urandom > /big.bin");
    let acked = s.sandbox();
    let snap = s.snapshot(&sb);
    // The 202 was sent: the record must survive the crash. Kill while the archive is written.
    let tmp = s.data.join("tmp");
    eventually(10, "the archive to start", || {
        std::fs::read_dir(&tmp).unwrap().count() > 0
    });
    assert_eq!(
        s.get(&format!("{P}/snapshots/{snap}")).json()["status"],
        "in_progress"
    );
    let data = s.kill9();
    let partials: Vec<_> = std::fs::read_dir(data.join("tmp"))
        .unwrap()
        .flatten()
        .collect();
    assert!(
        !partials.is_empty(),
        "the kill should land while the archive is being written"
    );

    let s = Server::start_in(data.clone(), &[], &[]);
    let v = s.get(&format!("{P}/snapshots/{snap}")).json();
    assert_eq!(v["status"], "failed", "{v}");
    let err = v["error"].as_str().unwrap();
    assert!(err.contains("server stopped"), "{err}");
    assert!(err.contains("in progress"), "{err}");
    // Never half-written: no partial archive is left, none is listed.
    assert_eq!(std::fs::read_dir(data.join("tmp")).unwrap().count(), 0);
    assert_eq!(
        std::fs::read_dir(data.join("snapshots")).unwrap().count(),
        0
    );
    let r = s.post_json(&format!("{P}/sandboxes"), &json!({"snapshot_id": snap}));
    assert_eq!(r.status, 400);
    // The sandbox is usable again (no longer snapshotting), and so is the one created just before.
    assert_eq!(
        s.get(&format!("{P}/sandboxes/{sb}")).json()["status"],
        "running"
    );
    assert_eq!(
        s.get(&format!("{P}/sandboxes/{acked}")).json()["status"],
        "running"
    );
    let h = [("X-Tensorlake-Sandbox-Id", sb.as_str())];
    assert_eq!(
        s.req("DELETE", "/api/v1/files?path=%2Fbig.bin", &h, None)
            .status,
        204
    );
    let again = s.snapshot(&sb);
    assert_eq!(
        s.wait_snapshot(&again, &["completed", "failed"])["status"],
        "completed"
    );
    eventually(10, "the start-up summary", || {
        s.stderr().contains("1 interrupted snapshots marked failed")
    });
}

#[test]
fn a_clean_stop_finishes_the_archives_in_progress() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    s.sh(&sb, "head -c 5000000 /dev/urandom > /big.bin");
    let snap = s.snapshot(&sb);
    let data = s.stop();
    let s = Server::start_in(data, &[], &[]);
    let v = s.get(&format!("{P}/snapshots/{snap}")).json();
    assert_ne!(v["status"], "failed", "{v}");
    assert!(
        v["size_bytes"].as_u64().unwrap_or(0) > 5_000_000 || v["status"] == "in_progress",
        "{v}"
    );
    assert_eq!(
        s.wait_snapshot(&snap, &["completed", "failed"])["status"],
        "completed"
    );
}

#[test]
fn a_kill_after_local_ready_keeps_the_snapshot() {
    // Every commit takes 300 ms, so the kill lands between a change in memory and its commit
    // whenever the server shows a state before it is stored (this test was flaky until the
    // finished archive was committed before memory showed `local_ready`).
    let s = Server::start_in(
        common::temp_dir("data"),
        &[
            "--snapshot-local-ready-ms",
            "0",
            "--snapshot-completed-ms",
            "60000",
        ],
        &[("TENSORLAKE_LOCAL_TEST_COMMIT_DELAY_MS", "300")],
    );
    let sb = s.sandbox();
    s.sh(&sb, "echo x > /x");
    let snap = s.snapshot(&sb);
    s.wait_snapshot(&snap, &["local_ready"]);
    let data = s.kill9();
    let s = Server::start_in(data, &[], &[]);
    assert_eq!(
        s.get(&format!("{P}/snapshots/{snap}")).json()["status"],
        "local_ready"
    );
    let r = s.post_json(&format!("{P}/sandboxes"), &json!({"snapshot_id": snap}));
    assert_eq!(r.status, 200);
}

#[test]
fn commands_die_with_the_server() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let h = [("X-Tensorlake-Sandbox-Id", sb.as_str())];
    let marker = "424242.5";
    let b = json!({"command": "sleep", "args": [marker]}).to_string();
    assert_eq!(
        s.req("POST", "/api/v1/processes", &h, Some(b.as_bytes()))
            .status,
        201
    );
    // The command itself, not the bwrap processes whose arguments mention it.
    let running = || common::process_running(&format!("sleep {marker}"));
    eventually(10, "the command to start", running);
    let data = s.kill9();
    eventually(10, "the command to die with the server", || !running());
    common::remove_data_dir(&data);
}

#[test]
fn jails_orphaned_by_a_crash_are_killed_at_the_next_start() {
    // bwrap arms its parent-death signal a moment after it starts; a crash inside that window
    // leaves a jail behind, which the next server on the same data directory kills.
    let s = Server::start(&[]);
    let root = s.data.join("sandboxes").join("sbx-orphan").join("root");
    std::fs::create_dir_all(&root).unwrap();
    let marker = "434343.5";
    let mut orphan = Command::new("bwrap")
        .args(["--unshare-all", "--bind"])
        .arg(&root)
        .args([
            "/",
            "--ro-bind",
            "/usr",
            "/usr",
            "--symlink",
            "usr/lib64",
            "/lib64",
            "--symlink",
            "usr/lib",
            "/lib",
            "--",
            "/usr/bin/sleep",
            marker,
        ])
        .spawn()
        .unwrap();
    let data = s.kill9();
    std::thread::sleep(Duration::from_millis(200));
    assert!(
        orphan.try_wait().unwrap().is_none(),
        "the orphan jail is running"
    );
    let s = Server::start_in(data, &[], &[]);
    let status = orphan.wait().unwrap();
    assert!(!status.success(), "killed, not finished");
    eventually(10, "the start-up log line", || {
        s.stderr().contains("orphaned sandbox processes")
    });
}

#[test]
fn one_server_per_data_dir() {
    let s = Server::start(&[]);
    let out = Command::new(env!("CARGO_BIN_EXE_tensorlake-local"))
        .args(["--port", "0", "--data-dir"])
        .arg(&s.data)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("already using"), "{err}");
    assert!(
        out.stdout.is_empty(),
        "no listening line when startup fails"
    );
}

#[test]
fn deleted_sandbox_files_are_removed() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    s.sh(&sb, "echo bye > /bye");
    let dir = s.data.join("sandboxes").join(&sb);
    assert!(dir.is_dir());
    s.delete(&format!("{P}/sandboxes/{sb}"));
    eventually(10, "tree removal", || !dir.exists());
    std::thread::sleep(Duration::from_millis(10));
}
