//! The snapshot state machine, restore inheritance, the memory-snapshot refusal, scripted
//! failures, deletion and seeding.

mod common;

use std::time::{Duration, Instant};

use common::Server;
use serde_json::{json, Value};

const P: &str = "/v1/namespaces/default";

fn snap(s: &Server, id: &str) -> Value {
    s.get(&format!("{P}/snapshots/{id}")).json()
}

#[test]
fn state_machine_in_progress_local_ready_completed() {
    let s = Server::start(&[
        "--snapshot-local-ready-ms",
        "400",
        "--snapshot-completed-ms",
        "400",
    ]);
    let sb = s.sandbox();
    s.sh(
        &sb,
        "mkdir -p /data && head -c 100000 /dev/urandom > /data/blob && echo a,b > /data/output.csv",
    );
    let t0 = Instant::now();
    let r = s.post_empty(&format!("{P}/sandboxes/{sb}/snapshot"));
    assert_eq!(r.status, 202);
    let v = r.json();
    assert_eq!(v["status"], "in_progress");
    let id = v["snapshot_id"].as_str().unwrap().to_string();
    assert_eq!(v.as_object().unwrap().len(), 2, "{v}");

    let first = snap(&s, &id);
    assert_eq!(first["status"], "in_progress");
    assert_eq!(first["id"], id.as_str());
    assert!(
        first.get("snapshot_id").is_none(),
        "never both id and snapshot_id"
    );
    assert_eq!(first["sandbox_id"], sb.as_str());
    assert_eq!(first["namespace"], "default");
    assert_eq!(first["snapshot_type"], "filesystem");
    assert_eq!(first["base_image"], "tensorlake/ubuntu-minimal");
    assert!(first["size_bytes"].is_null());
    assert!(first["error"].is_null());
    assert!(first["created_at"].is_i64());
    // The sandbox shows `snapshotting` meanwhile, and a second snapshot is refused.
    assert_eq!(
        s.get(&format!("{P}/sandboxes/{sb}")).json()["status"],
        "snapshotting"
    );
    let again = s.post_empty(&format!("{P}/sandboxes/{sb}/snapshot"));
    assert_eq!(again.status, 400);
    assert_eq!(again.text(), "Sandbox is already being snapshotted");
    // Restoring from an in-progress snapshot is refused with a reason.
    let early = s.post_json(&format!("{P}/sandboxes"), &json!({"snapshot_id": id}));
    assert_eq!(early.status, 400);
    assert!(early.text().contains("in_progress"), "{}", early.text());

    let mut seen = vec![first["status"].as_str().unwrap().to_string()];
    let deadline = Instant::now() + Duration::from_secs(20);
    let done = loop {
        let v = snap(&s, &id);
        let st = v["status"].as_str().unwrap().to_string();
        if seen.last() != Some(&st) {
            seen.push(st.clone());
        }
        if st == "completed" {
            break v;
        }
        assert!(Instant::now() < deadline, "stuck: {v}");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert_eq!(seen, vec!["in_progress", "local_ready", "completed"]);
    assert!(
        t0.elapsed() >= Duration::from_millis(800),
        "timings are minimums"
    );
    let size = done["size_bytes"].as_u64().unwrap();
    // 100 KB of random bytes do not compress: the archive is at least that big.
    assert!(
        size > 100_000,
        "size_bytes is the archive's real size: {size}"
    );
    let file = s.data.join("snapshots").join(
        done["snapshot_uri"]
            .as_str()
            .unwrap()
            .strip_prefix("tensorlake-local://snapshots/")
            .unwrap(),
    );
    assert_eq!(std::fs::metadata(&file).unwrap().len(), size);
    assert_eq!(done["rootfs_disk_bytes"], 100_004);
    assert_eq!(
        s.get(&format!("{P}/sandboxes/{sb}")).json()["status"],
        "running"
    );

    let list = s.get(&format!("{P}/snapshots")).json();
    assert_eq!(list["snapshots"].as_array().unwrap().len(), 1);
    assert_eq!(list["snapshots"][0], done);
    let mine = s.get(&format!("{P}/sandboxes/{sb}/snapshots")).json();
    assert_eq!(mine["snapshots"][0]["id"], id.as_str());
}

#[test]
fn restore_brings_files_back_and_inherits_unless_overridden() {
    let s = Server::start(&[]);
    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({"image": "tensorlake/ubuntu-minimal:latest", "resources": {"cpus": 2.0, "memory_mb": 3072, "disk_mb": 20480}, "entrypoint": ["python", "app.py"]}),
    );
    let sb = r.json()["sandbox_id"].as_str().unwrap().to_string();
    s.sh(&sb, "mkdir -p /data && printf 'a,b\\n1,2\\n' > /data/output.csv && ln -s output.csv /data/link && chmod 600 /data/output.csv");
    let id = s.snapshot(&sb);
    s.wait_snapshot(&id, &["local_ready"]);
    // Files written after the snapshot are not in it.
    s.sh(&sb, "echo later > /data/later.txt");

    // Everything omitted: inherited.
    let r = s.post_json(&format!("{P}/sandboxes"), &json!({"snapshot_id": id}));
    assert_eq!(r.status, 200, "{}", r.text());
    let a = r.json()["sandbox_id"].as_str().unwrap().to_string();
    let info = s.get(&format!("{P}/sandboxes/{a}")).json();
    assert_eq!(info["image"], "tensorlake/ubuntu-minimal:latest");
    assert_eq!(info["resources"]["cpus"], 2.0);
    assert_eq!(info["resources"]["memory_mb"], 3072);
    assert_eq!(info["resources"]["disk_mb"], 20480);
    assert_eq!(info["entrypoint"], json!(["python", "app.py"]));
    assert_eq!(s.read_file(&a, "/data/output.csv").text(), "a,b\n1,2\n");
    assert_eq!(
        s.sh(&a, "cat /data/link; stat -c %a /data/output.csv")
            .stdout,
        vec!["a,b", "1,2", "600"]
    );
    assert_eq!(s.read_file(&a, "/data/later.txt").status, 404);

    // Zero means inherit too; given values override.
    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({"snapshot_id": id, "image": "ubuntu-minimal", "resources": {"cpus": 4.0, "memory_mb": 0}}),
    );
    let b = r.json()["sandbox_id"].as_str().unwrap().to_string();
    let info = s.get(&format!("{P}/sandboxes/{b}")).json();
    assert_eq!(info["image"], "ubuntu-minimal");
    assert_eq!(info["resources"]["cpus"], 4.0);
    assert_eq!(info["resources"]["memory_mb"], 3072);

    // The disk may only grow.
    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({"snapshot_id": id, "resources": {"disk_mb": 1024}}),
    );
    assert_eq!(r.status, 400);
    assert!(r.text().contains("disk_mb may only grow"), "{}", r.text());

    // A restored sandbox is independent of its source.
    s.sh(&a, "echo changed > /data/output.csv");
    assert_eq!(s.read_file(&b, "/data/output.csv").text(), "a,b\n1,2\n");
    assert_eq!(s.read_file(&sb, "/data/output.csv").text(), "a,b\n1,2\n");
}

#[test]
fn memory_snapshot_refuses_different_resources() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    s.sh(&sb, "echo m > /m.txt");
    let r = s.post_json(
        &format!("{P}/sandboxes/{sb}/snapshot"),
        &json!({"snapshot_type": "memory"}),
    );
    assert_eq!(r.status, 202);
    let id = r.json()["snapshot_id"].as_str().unwrap().to_string();
    let v = s.wait_snapshot(&id, &["local_ready", "completed"]);
    assert_eq!(v["snapshot_type"], "memory");

    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({"snapshot_id": id, "resources": {"cpus": 4.0, "memory_mb": 2048}}),
    );
    assert_eq!(r.status, 400);
    assert!(r.content_type().starts_with("text/plain"));
    let msg = r.text();
    assert!(msg.contains("memory snapshot"), "{msg}");
    assert!(msg.contains("original resources"), "{msg}");
    assert!(msg.contains("cpus 1"), "{msg}");
    assert!(msg.contains("memory_mb 1024"), "{msg}");
    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({"snapshot_id": id, "image": "ubuntu-minimal"}),
    );
    assert_eq!(r.status, 400);

    // Same resources, or none (the WHL SDK omits them), are fine.
    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({"snapshot_id": id, "resources": {"cpus": 1.0, "memory_mb": 1024}}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = s.post_json(&format!("{P}/sandboxes"), &json!({"snapshot_id": id}));
    assert_eq!(r.status, 200);
    let a = r.json()["sandbox_id"].as_str().unwrap().to_string();
    assert_eq!(s.read_file(&a, "/m.txt").text(), "m\n");

    // A filesystem snapshot of the same sandbox may change them.
    let fs = s.snapshot(&sb);
    s.wait_snapshot(&fs, &["local_ready", "completed"]);
    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({"snapshot_id": fs, "resources": {"cpus": 4.0, "memory_mb": 2048}}),
    );
    assert_eq!(r.status, 200);
}

#[test]
fn scripted_failure_passes_through_in_progress_then_fails() {
    let s = Server::start(&["--snapshot-local-ready-ms", "1000"]);
    let sb = s.sandbox();
    let r = s.post_json(
        "/_admin/snapshot-failures",
        &json!({"sandbox_id": sb, "error": "disk quota exceeded on host-7"}),
    );
    assert_eq!(r.status, 201);
    let id = s.snapshot(&sb);
    assert_eq!(snap(&s, &id)["status"], "in_progress");
    let v = s.wait_snapshot(&id, &["failed", "completed", "local_ready"]);
    assert_eq!(v["status"], "failed");
    assert_eq!(v["error"], "disk quota exceeded on host-7");
    assert!(v["size_bytes"].is_null());
    let restore = s.post_json(&format!("{P}/sandboxes"), &json!({"snapshot_id": id}));
    assert_eq!(restore.status, 400);
    assert!(restore.text().contains("disk quota exceeded on host-7"));
    // Only the next snapshot fails.
    let ok = s.snapshot(&sb);
    assert_eq!(
        s.wait_snapshot(&ok, &["failed", "local_ready", "completed"])["status"],
        "local_ready"
    );
    // Unknown sandbox.
    let r = s.post_json(
        "/_admin/snapshot-failures",
        &json!({"sandbox_id": "sbx-nope", "error": "x"}),
    );
    assert_eq!(r.status, 404);
}

#[test]
fn delete_snapshot_removes_its_archive() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let id = s.snapshot(&sb);
    let v = s.wait_snapshot(&id, &["completed"]);
    let file = s.data.join("snapshots").join(
        v["snapshot_uri"]
            .as_str()
            .unwrap()
            .strip_prefix("tensorlake-local://snapshots/")
            .unwrap(),
    );
    assert!(std::path::Path::new(&file).is_file());
    let d = s.delete(&format!("{P}/snapshots/{id}"));
    assert_eq!(d.status, 200);
    assert!(d.body.is_empty());
    assert_eq!(s.get(&format!("{P}/snapshots/{id}")).status, 404);
    assert!(!std::path::Path::new(&file).exists());
    assert_eq!(
        s.get(&format!("{P}/snapshots")).json()["snapshots"],
        json!([])
    );
    // Deleting the sandbox keeps its snapshots, which stay restorable.
    let id2 = s.snapshot(&sb);
    s.wait_snapshot(&id2, &["completed"]);
    s.delete(&format!("{P}/sandboxes/{sb}"));
    let r = s.post_json(&format!("{P}/sandboxes"), &json!({"snapshot_id": id2}));
    assert_eq!(r.status, 200);
}

#[test]
fn deleting_during_archiving_leaves_nothing_behind() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    s.sh(&sb, "head -c 20000000 /dev/urandom > /big");
    let id = s.snapshot(&sb);
    assert_eq!(s.delete(&format!("{P}/snapshots/{id}")).status, 200);
    let dir = s.data.join("snapshots");
    let tmp = s.data.join("tmp");
    common::eventually(30, "archive cleanup", || {
        std::fs::read_dir(&dir).unwrap().count() == 0
            && std::fs::read_dir(&tmp).unwrap().count() == 0
    });
    assert_eq!(
        s.get(&format!("{P}/sandboxes/{sb}")).json()["status"],
        "running"
    );
}

#[test]
fn seeded_snapshots_share_the_archive() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    s.sh(&sb, "echo seed > /seed.txt");
    let src = s.snapshot(&sb);
    s.wait_snapshot(&src, &["completed"]);
    let t0 = Instant::now();
    let r = s.post_json(
        "/_admin/seed-snapshots",
        &json!({"from_snapshot_id": src, "count": 2000}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "seeding must be fast"
    );
    let ids: Vec<String> = r.json()["snapshot_ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids.len(), 2000);
    let list = s.get(&format!("{P}/snapshots")).json();
    assert_eq!(list["snapshots"].as_array().unwrap().len(), 2001);
    let one = snap(&s, &ids[7]);
    assert_eq!(one["status"], "completed");
    assert_eq!(one["size_bytes"], snap(&s, &src)["size_bytes"]);
    // Restoring from a seeded record works.
    let r = s.post_json(&format!("{P}/sandboxes"), &json!({"snapshot_id": ids[0]}));
    let a = r.json()["sandbox_id"].as_str().unwrap().to_string();
    assert_eq!(s.read_file(&a, "/seed.txt").text(), "seed\n");
    // Deleting records never removes an archive still in use.
    assert_eq!(s.delete(&format!("{P}/snapshots/{src}")).status, 200);
    assert_eq!(s.delete(&format!("{P}/snapshots/{}", ids[1])).status, 200);
    let r = s.post_json(&format!("{P}/sandboxes"), &json!({"snapshot_id": ids[2]}));
    assert_eq!(r.status, 200, "{}", r.text());
    let b = r.json()["sandbox_id"].as_str().unwrap().to_string();
    assert_eq!(s.read_file(&b, "/seed.txt").text(), "seed\n");
    // Limits and errors.
    assert_eq!(
        s.post_json(
            "/_admin/seed-snapshots",
            &json!({"from_snapshot_id": ids[3], "count": 20001})
        )
        .status,
        400
    );
    assert_eq!(
        s.post_json(
            "/_admin/seed-snapshots",
            &json!({"from_snapshot_id": "snap-nope", "count": 1})
        )
        .status,
        404
    );
}

#[test]
fn listing_ten_thousand_snapshots_is_quick() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let src = s.snapshot(&sb);
    s.wait_snapshot(&src, &["completed"]);
    let r = s.post_json(
        "/_admin/seed-snapshots",
        &json!({"from_snapshot_id": src, "count": 10000}),
    );
    assert_eq!(r.status, 201);
    let t0 = Instant::now();
    let list = s.get(&format!("{P}/snapshots"));
    let took = t0.elapsed();
    assert_eq!(list.json()["snapshots"].as_array().unwrap().len(), 10001);
    // Debug build on a shared machine; a release build answers in a few milliseconds.
    assert!(took < Duration::from_secs(5), "listing took {took:?}");
}
