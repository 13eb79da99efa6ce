//! Sandbox pools as the official SDKs drive them (create, get, list, update, delete, claim), their
//! warm sandboxes (real, isolated, replaced after a claim, restored after a restart), their
//! limits, and the 501 answers of routes the SDKs call that a local server cannot serve.

mod common;

use std::collections::BTreeSet;
use std::os::unix::fs::MetadataExt;

use common::{eventually, Server};
use serde_json::{json, Value};

const P: &str = "/v1/namespaces/default";

fn create_pool(s: &Server, body: Value) -> String {
    let r = s.post_json(&format!("{P}/sandbox-pools"), &body);
    assert_eq!(r.status, 200, "{}", r.text());
    let v = r.json();
    assert_eq!(v["namespace"], "default");
    v["pool_id"].as_str().unwrap().to_string()
}

fn pool(s: &Server, id: &str) -> Value {
    let r = s.get(&format!("{P}/sandbox-pools/{id}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

/// Ids of the pool's containers in `state` (`Idle` = warm, `Running` = claimed).
fn containers(s: &Server, id: &str, state: &str) -> BTreeSet<String> {
    pool(s, id)["containers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == state)
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

fn wait_warm(s: &Server, id: &str, n: usize) -> BTreeSet<String> {
    eventually(60, &format!("{n} warm sandboxes in {id}"), || {
        containers(s, id, "Idle").len() == n
    });
    containers(s, id, "Idle")
}

fn claim(s: &Server, id: &str) -> common::Resp {
    s.post_json(&format!("{P}/sandbox-pools/{id}/sandboxes"), &json!({}))
}

fn listed_sandboxes(s: &Server) -> BTreeSet<String> {
    s.get(&format!("{P}/sandboxes")).json()["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn pools_are_created_read_listed_updated_and_deleted() {
    let s = Server::start(&[]);
    let id = create_pool(
        &s,
        json!({"image": "tensorlake/ubuntu-minimal",
               "resources": {"cpus": 1.0, "memory_mb": 512, "disk_mb": 2048},
               "timeout_secs": 0, "entrypoint": ["sleep", "infinity"],
               "max_containers": 3, "warm_containers": 0}),
    );
    let v = pool(&s, &id);
    assert_eq!(v["id"], id.as_str());
    assert_eq!(v["image"], "tensorlake/ubuntu-minimal");
    assert_eq!(v["resources"]["memory_mb"], 512);
    assert_eq!(v["resources"]["disk_mb"], 2048);
    assert_eq!(v["entrypoint"], json!(["sleep", "infinity"]));
    assert_eq!(v["max_containers"], 3);
    assert_eq!(v["warm_containers"], 0);
    assert_eq!(v["containers"], json!([]));
    assert!(v["created_at"].is_i64());

    let list = s.get(&format!("{P}/sandbox-pools")).json();
    let pools = list["pools"].as_array().unwrap();
    assert_eq!(pools.len(), 1);
    assert_eq!(pools[0]["id"], id.as_str());
    assert!(pools[0].get("containers").is_none());
    // Another namespace sees nothing of it.
    let other = s.get("/v1/namespaces/other/sandbox-pools").json();
    assert_eq!(other["pools"], json!([]));
    assert_eq!(
        s.get(&format!("/v1/namespaces/other/sandbox-pools/{id}"))
            .status,
        404
    );

    // PUT replaces the configuration (what the Python SDK sends); PATCH is accepted too.
    let r = s.put_json(
        &format!("{P}/sandbox-pools/{id}"),
        &json!({"image": "ubuntu-minimal", "resources": {"cpus": 2.0, "memory_mb": 2048},
                "max_containers": 5, "warm_containers": 1}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["image"], "ubuntu-minimal");
    assert_eq!(r.json()["max_containers"], 5);
    let body = json!({"image": "ubuntu-minimal", "resources": {"cpus": 2.0}, "warm_containers": 0});
    let b = body.to_string();
    let r = s.req(
        "PATCH",
        &format!("{P}/sandbox-pools/{id}"),
        &[("Content-Type", "application/json")],
        Some(b.as_bytes()),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let v = pool(&s, &id);
    assert_eq!(v["warm_containers"], 0);
    assert_eq!(v["resources"]["cpus"], 2.0);

    assert_eq!(s.delete(&format!("{P}/sandbox-pools/{id}")).status, 200);
    let r = s.get(&format!("{P}/sandbox-pools/{id}"));
    assert_eq!(r.status, 404);
    assert!(r.text().contains("Sandbox pool not found"), "{}", r.text());
    assert_eq!(s.delete(&format!("{P}/sandbox-pools/{id}")).status, 404);
    assert_eq!(claim(&s, &id).status, 404);
    assert_eq!(
        s.get(&format!("{P}/sandbox-pools")).json()["pools"],
        json!([])
    );
}

#[test]
fn bad_pool_requests_are_refused_with_4xx_naming_the_field() {
    let s = Server::start(&[]);
    for (body, field) in [
        (
            json!({"image": "x", "resources": {}, "warm_containers": 3, "max_containers": 2}),
            "warm_containers",
        ),
        (
            json!({"image": "x", "resources": {}, "warm_containers": 100000}),
            "warm_containers",
        ),
        (
            json!({"image": "x", "resources": {}, "max_containers": 0}),
            "max_containers",
        ),
        (
            json!({"image": "x", "resources": {"cpus": -1.0}}),
            "resources.cpus",
        ),
        (
            json!({"image": "x", "resources": {}, "timeout_secs": -5}),
            "timeout_secs",
        ),
        (
            json!({"image": "x", "resources": {}, "warm_containers": "two"}),
            "warm_containers",
        ),
    ] {
        let r = s.post_json(&format!("{P}/sandbox-pools"), &body);
        assert!(
            (400..500).contains(&r.status),
            "{body}: {} {}",
            r.status,
            r.text()
        );
        assert!(r.text().contains(field), "{body}: {}", r.text());
    }
    let r = s.req(
        "POST",
        &format!("{P}/sandbox-pools"),
        &[("Content-Type", "application/json")],
        Some(b"{not json"),
    );
    assert!((400..500).contains(&r.status), "{}", r.status);
    assert_eq!(
        s.get(&format!("{P}/sandbox-pools")).json()["pools"],
        json!([])
    );
}

#[test]
fn warm_sandboxes_are_real_and_a_claim_takes_one_that_is_then_replaced() {
    let s = Server::start(&[]);
    let id = create_pool(
        &s,
        json!({"image": "tensorlake/ubuntu-minimal", "resources": {"cpus": 1.0, "memory_mb": 512},
               "warm_containers": 2}),
    );
    let warm = wait_warm(&s, &id, 2);
    // Real sandboxes: a command runs in each, and each has its own files.
    for sb in &warm {
        let run = s.sh(sb, "echo hello > /tmp/x && cat /tmp/x");
        assert_eq!(run.code(), 0);
        assert_eq!(run.stdout, vec!["hello"]);
        let info = s.get(&format!("{P}/sandboxes/{sb}")).json();
        assert_eq!(info["pool_id"], id.as_str());
    }
    // Made through the normal create path: as root, each root belongs to its own host uid.
    if unsafe { libc::geteuid() } == 0 {
        let owners: BTreeSet<u32> = warm
            .iter()
            .map(|sb| {
                std::fs::metadata(s.data.join("sandboxes").join(sb).join("root"))
                    .unwrap()
                    .uid()
            })
            .collect();
        assert_eq!(owners.len(), 2, "warm sandboxes share a uid");
        assert!(!owners.contains(&0));
    }
    // Unclaimed warm sandboxes are not sandboxes of the user yet.
    assert!(listed_sandboxes(&s).is_disjoint(&warm));

    let r = claim(&s, &id);
    assert_eq!(r.status, 200, "{}", r.text());
    let claimed = r.json()["sandbox_id"].as_str().unwrap().to_string();
    assert!(
        warm.contains(&claimed),
        "the claim did not take a warm sandbox"
    );
    assert_eq!(r.json()["status"], "running");
    assert_eq!(
        containers(&s, &id, "Running"),
        BTreeSet::from([claimed.clone()])
    );
    assert!(listed_sandboxes(&s).contains(&claimed));
    // The file written while it was warm is still there: the same sandbox, not a new one.
    assert_eq!(s.sh(&claimed, "cat /tmp/x").stdout, vec!["hello"]);

    // A replacement appears, so two are warm again.
    let again = wait_warm(&s, &id, 2);
    assert!(!again.contains(&claimed));
    assert_eq!(again.intersection(&warm).count(), 1);
    let fresh = again.difference(&warm).next().unwrap().clone();
    assert_eq!(s.sh(&fresh, "echo ok").stdout, vec!["ok"]);

    assert_eq!(claim(&s, "pool-doesnotexist").status, 404);
}

#[test]
fn max_containers_is_enforced_and_freed_by_a_delete() {
    let s = Server::start(&[]);
    let id = create_pool(
        &s,
        json!({"image": "tensorlake/ubuntu-minimal", "resources": {}, "max_containers": 2}),
    );
    // No warm sandboxes: claims create on demand, up to max_containers.
    let a = claim(&s, &id);
    assert_eq!(a.status, 200, "{}", a.text());
    let b = claim(&s, &id);
    assert_eq!(b.status, 200, "{}", b.text());
    let a = a.json()["sandbox_id"].as_str().unwrap().to_string();
    assert_eq!(s.sh(&a, "echo on-demand").stdout, vec!["on-demand"]);
    let r = claim(&s, &id);
    assert_eq!(r.status, 429, "{}", r.text());
    assert!(r.text().contains("max_containers"), "{}", r.text());
    assert_eq!(containers(&s, &id, "Running").len(), 2);

    assert_eq!(s.delete(&format!("{P}/sandboxes/{a}")).status, 200);
    let r = claim(&s, &id);
    assert_eq!(r.status, 200, "{}", r.text());

    // Warm sandboxes count against the limit too.
    let w = create_pool(
        &s,
        json!({"image": "tensorlake/ubuntu-minimal", "resources": {}, "max_containers": 2,
               "warm_containers": 2}),
    );
    wait_warm(&s, &w, 2);
    assert_eq!(claim(&s, &w).status, 200);
    assert_eq!(claim(&s, &w).status, 200);
    assert_eq!(claim(&s, &w).status, 429);
    // No replacement can be made while the pool is full.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    assert_eq!(containers(&s, &w, "Idle").len(), 0);
}

#[test]
fn a_pool_with_active_sandboxes_cannot_be_deleted() {
    let s = Server::start(&[]);
    let id = create_pool(
        &s,
        json!({"image": "tensorlake/ubuntu-minimal", "resources": {}, "warm_containers": 1}),
    );
    wait_warm(&s, &id, 1);
    let r = claim(&s, &id);
    let claimed = r.json()["sandbox_id"].as_str().unwrap().to_string();
    let r = s.delete(&format!("{P}/sandbox-pools/{id}"));
    assert_eq!(r.status, 409, "{}", r.text());
    assert!(r.text().contains("1 active"), "{}", r.text());
    assert!(r.text().contains(&claimed), "{}", r.text());
    assert_eq!(pool(&s, &id)["id"], id.as_str());

    assert_eq!(s.delete(&format!("{P}/sandboxes/{claimed}")).status, 200);
    let warm = wait_warm(&s, &id, 1);
    assert_eq!(s.delete(&format!("{P}/sandbox-pools/{id}")).status, 200);
    assert_eq!(s.get(&format!("{P}/sandbox-pools/{id}")).status, 404);
    // Its warm sandboxes go with it.
    for sb in warm {
        assert_eq!(
            s.get(&format!("{P}/sandboxes/{sb}")).json()["status"],
            "terminated"
        );
    }
}

#[test]
fn pools_and_their_warm_sandboxes_survive_a_restart() {
    let s = Server::start(&[]);
    let id = create_pool(
        &s,
        json!({"image": "tensorlake/ubuntu-minimal", "resources": {"memory_mb": 768},
               "warm_containers": 2, "max_containers": 4}),
    );
    wait_warm(&s, &id, 2);
    let claimed = claim(&s, &id).json()["sandbox_id"]
        .as_str()
        .unwrap()
        .to_string();
    let warm = wait_warm(&s, &id, 2);
    let before = pool(&s, &id);
    let data = s.stop();

    let s = Server::start_in(data, &[], &[]);
    let after = pool(&s, &id);
    for key in [
        "image",
        "resources",
        "max_containers",
        "warm_containers",
        "created_at",
    ] {
        assert_eq!(after[key], before[key], "{key}");
    }
    assert_eq!(
        containers(&s, &id, "Running"),
        BTreeSet::from([claimed.clone()])
    );
    assert_eq!(wait_warm(&s, &id, 2), warm);
    for sb in &warm {
        assert_eq!(s.sh(sb, "echo back").stdout, vec!["back"]);
    }
    // A claim after the restart still takes a warm one, and it is replaced.
    let r = claim(&s, &id);
    assert!(warm.contains(r.json()["sandbox_id"].as_str().unwrap()));
    wait_warm(&s, &id, 2);
    let lost = containers(&s, &id, "Idle");
    let data = s.kill9();
    // A crash that also lost the warm sandboxes' files: new ones are made at startup.
    for sb in &lost {
        let dir = data.join("sandboxes").join(sb);
        eventually(30, "the warm sandbox's files to be removable", || {
            std::fs::remove_dir_all(&dir).is_ok() || !dir.exists()
        });
    }
    let s = Server::start_in(data, &[], &[]);
    let rewarm = wait_warm(&s, &id, 2);
    assert!(rewarm.is_disjoint(&lost));
    for sb in &lost {
        assert_eq!(
            s.get(&format!("{P}/sandboxes/{sb}")).json()["status"],
            "terminated"
        );
    }
    assert_eq!(pool(&s, &id)["containers"].as_array().unwrap().len(), 4);
    for sb in &rewarm {
        assert_eq!(s.sh(sb, "echo ok").stdout, vec!["ok"]);
    }
}

#[test]
fn routes_a_local_server_cannot_serve_answer_501_naming_the_feature() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let cases: Vec<(&str, String, &str)> = vec![
        ("POST", format!("{P}/sandboxes/{sb}/copy?times=1"), "copies"),
        ("GET", format!("{P}/sandboxes/{sb}/logs"), "logs"),
        ("GET", format!("{P}/sandboxes/{sb}/logs/processes"), "logs"),
        ("POST", format!("{P}/sandboxes/{sb}/resize"), "resize"),
        (
            "POST",
            format!("{P}/sandboxes/{sb}/file_systems"),
            "file system",
        ),
        (
            "DELETE",
            format!("{P}/sandboxes/{sb}/file_systems/fs-1"),
            "file system",
        ),
        ("GET", format!("{P}/archived-sandboxes"), "archived"),
        ("GET", format!("{P}/archived-sandboxes/{sb}"), "archived"),
        ("GET", format!("{P}/filesystems"), "file systems"),
        ("POST", format!("{P}/sandbox-templates"), "image builds"),
        (
            "POST",
            "/platform/v1/organizations/o/projects/p/sandbox-template-builds".into(),
            "image builds",
        ),
        ("GET", "/images/name/foo".into(), "image builds"),
        ("POST", "/api/v1/pty".into(), "PTY"),
        ("GET", "/api/v1/pty/abc/ws".into(), "PTY"),
        ("GET", "/api/v1/desktop".into(), "desktop"),
        ("POST", "/api/v1/tunnels/tcp".into(), "tunnels"),
    ];
    for (method, path, feature) in cases {
        let r = s.req(
            method,
            &path,
            &[("X-Tensorlake-Sandbox-Id", &sb)],
            Some(b"{}"),
        );
        assert_eq!(r.status, 501, "{method} {path}: {} {}", r.status, r.text());
        assert_eq!(r.content_type(), "application/json", "{method} {path}");
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains(feature), "{method} {path}: {msg}");
    }
    // A claim asking for file system mounts is refused the same way, before anything is made.
    let id = create_pool(
        &s,
        json!({"image": "tensorlake/ubuntu-minimal", "resources": {}}),
    );
    let r = s.post_json(
        &format!("{P}/sandbox-pools/{id}/sandboxes"),
        &json!({"file_systems": [{"file_system_id": "x", "mount_path": "/mnt"}]}),
    );
    assert_eq!(r.status, 501, "{}", r.text());
    assert_eq!(pool(&s, &id)["containers"], json!([]));
}

#[test]
fn a_suspended_warm_sandbox_is_replaced_not_handed_out() {
    let s = Server::start(&[]);
    let id = create_pool(
        &s,
        json!({"image": "tensorlake/ubuntu-minimal", "resources": {}, "warm_containers": 1}),
    );
    let warm = wait_warm(&s, &id, 1);
    let parked = warm.iter().next().unwrap().clone();
    let r = s.post_empty(&format!("{P}/sandboxes/{parked}/suspend"));
    assert!(
        r.status == 200 || r.status == 202,
        "{} {}",
        r.status,
        r.text()
    );
    eventually(30, "the suspended warm sandbox to be replaced", || {
        let idle = containers(&s, &id, "Idle");
        idle.len() == 1 && !idle.contains(&parked)
    });
    assert_eq!(
        s.get(&format!("{P}/sandboxes/{parked}")).json()["status"],
        "terminated"
    );
    let r = claim(&s, &id);
    assert_ne!(r.json()["sandbox_id"].as_str().unwrap(), parked);
    assert_eq!(r.json()["status"], "running");
}

#[test]
fn an_update_recycles_warm_sandboxes_but_leaves_claimed_ones() {
    let s = Server::start(&[]);
    let body = |mem: i64, warm: i64| {
        json!({"image": "tensorlake/ubuntu-minimal", "resources": {"memory_mb": mem},
               "warm_containers": warm})
    };
    let id = create_pool(&s, body(512, 2));
    wait_warm(&s, &id, 2);
    let claimed = claim(&s, &id).json()["sandbox_id"]
        .as_str()
        .unwrap()
        .to_string();
    let old = wait_warm(&s, &id, 2);
    // New resources: the unclaimed warm sandboxes are replaced by ones with the new settings.
    let r = s.put_json(&format!("{P}/sandbox-pools/{id}"), &body(768, 2));
    assert_eq!(r.status, 200, "{}", r.text());
    let new = wait_warm(&s, &id, 2);
    assert!(new.is_disjoint(&old));
    for sb in &new {
        let info = s.get(&format!("{P}/sandboxes/{sb}")).json();
        assert_eq!(info["resources"]["memory_mb"], 768);
    }
    assert_eq!(
        containers(&s, &id, "Running"),
        BTreeSet::from([claimed.clone()])
    );
    assert_eq!(
        s.get(&format!("{P}/sandboxes/{claimed}")).json()["status"],
        "running"
    );
    // Same settings, fewer warm: the extra ones go, the kept one stays.
    let r = s.put_json(&format!("{P}/sandbox-pools/{id}"), &body(768, 1));
    assert_eq!(r.status, 200, "{}", r.text());
    let kept = containers(&s, &id, "Idle");
    assert_eq!(kept.len(), 1);
    assert!(kept.is_subset(&new));
}

#[test]
fn a_claimed_sandbox_times_out_into_suspended_counting_from_the_claim() {
    // Tensorlake's own pool timeout tests: a sandbox claimed from a pool with timeout_secs ends
    // up suspended (not terminated), with no terminal outcome, and its clock starts at the claim.
    let s = Server::start(&[]);
    let id = create_pool(&s, json!({"warm_containers": 1, "timeout_secs": 2}));
    wait_warm(&s, &id, 1);
    // Longer than the timeout while warm: a warm sandbox's clock has not started.
    std::thread::sleep(std::time::Duration::from_millis(2500));
    let claimed = claim(&s, &id).json()["sandbox_id"].as_str().unwrap().to_string();
    let status = |s: &Server| s.get(&format!("{P}/sandboxes/{claimed}")).json()["status"].clone();
    assert_eq!(status(&s), "running", "the clock starts at the claim");
    eventually(10, "suspended after its timeout", || status(&s) == "suspended");
    let info = s.get(&format!("{P}/sandboxes/{claimed}")).json();
    assert!(info["outcome"].is_null(), "{info}");
}
