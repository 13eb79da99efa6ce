//! Jail-escape attempts: a sandbox must not reach the host's files or another sandbox's, through
//! commands or the file API, with `..`, absolute paths, symlinks, or writes to `/usr`. Also what
//! happens without bubblewrap.

mod common;

use common::{temp_dir, urlencode, Scratch, Server};
use serde_json::json;

const P: &str = "/v1/namespaces/default";

/// A host directory with a secret file the sandboxes must never see.
fn host_secret() -> (Scratch, String) {
    let dir = Scratch::new("host");
    let secret = dir.join("secret.txt");
    std::fs::write(&secret, "HOST-SECRET-42").unwrap();
    (dir, secret.to_string_lossy().into_owned())
}

#[test]
fn commands_cannot_read_host_files() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let (_dir, secret) = host_secret();
    let depth = "../".repeat(30);
    for script in [
        format!("cat {secret}"),
        format!("cat {depth}{}", secret.trim_start_matches('/')),
        format!("ln -s {secret} /abs-link && cat /abs-link"),
        format!(
            "ln -s {depth}{} /rel-link && cat /rel-link",
            secret.trim_start_matches('/')
        ),
        "cat /etc/shadow /etc/passwd".to_string(),
        "cd / && cd .. && cd .. && pwd && ls".to_string(),
    ] {
        let run = s.sh(&sb, &script);
        let all = format!("{:?}{:?}", run.stdout, run.stderr);
        assert!(!all.contains("HOST-SECRET-42"), "{script} leaked: {all}");
        if let Some(line) = host_only_passwd_line() {
            assert!(!all.contains(&line), "{script} leaked /etc/passwd: {all}");
        }
    }
    // `/` is the sandbox root: only its own entries and the jail's mounts.
    // `/etc` and `/home` are the image's: no host directory, no host home.
    let ls = s.sh(&sb, "ls -a /");
    assert!(!ls.stdout.iter().any(|l| l == "work"), "{:?}", ls.stdout);
    let homes = s.sh(&sb, "ls /home");
    assert_eq!(homes.stdout, vec!["user"]);
}

#[test]
fn commands_cannot_write_the_host_or_usr() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let (dir, _) = host_secret();
    let target = dir.join("written-by-sandbox");
    let t = target.to_string_lossy();
    let run = s.sh(
        &sb,
        &format!(
            "mkdir -p {dir} && echo x > {t}; ln -s {t} /wlink; echo y > /wlink; echo $?",
            dir = dir.display()
        ),
    );
    assert!(!target.exists(), "a sandbox wrote to the host: {run:?}");
    // It landed inside the sandbox root instead.
    assert!(s
        .data
        .join("sandboxes")
        .join(&sb)
        .join("root")
        .join(t.trim_start_matches('/'))
        .exists());

    // `/usr` is the sandbox's own layer over the host's: a write lands in the layer, never on
    // the host, and the host's files stay theirs.
    let run = s.sh(&sb, "touch /usr/evil 2>&1; echo rc=$?");
    assert!(run.stdout.contains(&"rc=0".to_string()), "{run:?}");
    assert!(!std::path::Path::new("/usr/evil").exists());
    let run = s.sh(&sb, "echo x > /usr/bin/env 2>&1; echo rc=$?");
    assert!(!run.stdout.contains(&"rc=0".to_string()), "{run:?}");
    let run = s.sh(&sb, "mount -o remount,rw /usr 2>&1; echo rc=$?");
    assert!(!run.stdout.contains(&"rc=0".to_string()), "{run:?}");
    // No capabilities, no host processes, no network.
    let caps = s.sh(&sb, "grep CapEff /proc/self/status");
    assert_eq!(caps.stdout, vec!["CapEff:\t0000000000000000"]);
    let procs = s.sh(&sb, "cat /proc/[0-9]*/cmdline | tr '\\0' ' '");
    let seen = procs.stdout.join(" ");
    assert!(seen.contains("cat"), "{seen}");
    assert!(
        !seen.contains("tensorlake-local"),
        "host processes visible: {seen}"
    );
    let port = s.port;
    let net = s.run(
        &sb,
        "python3",
        &["-c", &format!("import socket; s=socket.socket(); s.settimeout(2); s.connect(('127.0.0.1', {port})); print('connected')")],
    );
    assert!(
        !net.stdout.contains(&"connected".to_string()),
        "a sandbox reached the network: {net:?}"
    );
    assert_ne!(net.code(), 0);
}

#[test]
fn sandboxes_cannot_see_each_other() {
    let s = Server::start(&[]);
    let a = s.sandbox();
    let b = s.sandbox();
    s.sh(&a, "echo A-ONLY > /mine.txt");
    let a_root = s.data.join("sandboxes").join(&a).join("root");
    let path = a_root.join("mine.txt");
    let run = s.sh(&b, &format!("cat {} /mine.txt 2>&1", path.display()));
    assert!(!run.stdout.iter().any(|l| l.contains("A-ONLY")), "{run:?}");
    assert_eq!(s.read_file(&b, &path.to_string_lossy()).status, 404);
    assert_eq!(s.read_file(&b, "/mine.txt").status, 404);
    assert_eq!(s.read_file(&a, "/mine.txt").text(), "A-ONLY\n");
}

#[test]
fn file_api_refuses_dotdot_and_resolves_links_inside_the_root() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let (dir, secret) = host_secret();
    let h = [("X-Tensorlake-Sandbox-Id", sb.as_str())];

    for p in ["/../../etc/passwd", "/data/../../x", "/.."] {
        let r = s.read_file(&sb, p);
        assert_eq!(r.status, 400, "{p}");
        assert_eq!(r.json()["code"], "PATH_TRAVERSAL", "{p}");
    }
    // Absolute host paths are paths inside the sandbox.
    assert_eq!(s.read_file(&sb, &secret).status, 404);
    // `/etc/passwd` is the image's, not the host's.
    let r = s.read_file(&sb, "/etc/passwd");
    if let Some(line) = host_only_passwd_line() {
        assert!(!r.text().contains(&line), "{}", r.text());
    }

    // Links made by a command resolve inside the root, never on the host.
    let depth = "../".repeat(20);
    s.sh(
        &sb,
        &format!(
            "ln -s {secret} /abs; ln -s {depth}{rel} /rel; ln -s / /rootlink; ln -s {dir} /dirlink; ln -s /nowhere /dangling",
            rel = secret.trim_start_matches('/'),
            dir = dir.display()
        ),
    );
    for p in ["/abs", "/rel", "/dirlink/secret.txt", "/rootlink/abs"] {
        let r = s.read_file(&sb, p);
        assert_ne!(r.status, 200, "{p} answered {}", r.text());
        assert!(!r.text().contains("HOST-SECRET-42"), "{p} leaked");
    }
    // Through a dangling link a write fails (as `mkdir -p` would) and touches nothing.
    let w = s.write_file(&sb, "/dangling/x", b"x");
    assert_eq!(w.status, 404, "{}", w.text());
    // Once the link's target exists inside the sandbox, writing through it lands there.
    s.sh(&sb, &format!("mkdir -p {}", dir.display()));
    let w = s.write_file(&sb, "/dirlink/new.txt", b"in-sandbox");
    assert_eq!(w.status, 204, "{}", w.text());
    assert!(!dir.join("new.txt").exists(), "file API wrote to the host");
    assert_eq!(
        s.read_file(&sb, &format!("{}/new.txt", dir.display()))
            .text(),
        "in-sandbox"
    );
    let w = s.write_file(&sb, "/abs", b"overwrite?");
    assert_eq!(w.status, 204);
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "HOST-SECRET-42");
    // Listing through a link lists the sandbox, not the host.
    let l = s.req(
        "GET",
        &format!(
            "/api/v1/files/list?path={}",
            urlencode(&dir.to_string_lossy())
        ),
        &h,
        None,
    );
    let names: Vec<String> = l.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        vec!["new.txt", "secret.txt"],
        "only files written inside the sandbox"
    );
    let inside = s
        .data
        .join("sandboxes")
        .join(&sb)
        .join("root")
        .join(secret.trim_start_matches('/'));
    assert_eq!(std::fs::read_to_string(&inside).unwrap(), "overwrite?");
    // Deleting through a link deletes the sandbox's file, never the host's; deleting a link
    // removes the link only.
    let d = s.req(
        "DELETE",
        &format!("/api/v1/files?path={}", urlencode("/dirlink/secret.txt")),
        &h,
        None,
    );
    assert_eq!(d.status, 204);
    assert!(!inside.exists());
    assert_eq!(std::fs::read_to_string(&secret).unwrap(), "HOST-SECRET-42");
    let d = s.req(
        "DELETE",
        &format!("/api/v1/files?path={}", urlencode("/rootlink")),
        &h,
        None,
    );
    assert_eq!(d.status, 204);
    assert_eq!(
        s.read_file(&sb, "/dirlink/new.txt").status,
        200,
        "the root survived deleting a link to it"
    );

    // The host mounts are read-only through the file API too.
    for p in ["/usr/evil", "/proc/x", "/dev/x", "/bin/x", "/lib/x"] {
        let r = s.write_file(&sb, p, b"x");
        assert_eq!(r.status, 403, "{p}");
        assert_eq!(r.json()["code"], "READ_ONLY");
    }
    let r = s.req("DELETE", "/api/v1/files?path=%2Fusr", &h, None);
    assert_eq!(r.status, 403);
    assert!(!std::path::Path::new("/usr/evil").exists());
}

#[test]
fn snapshots_never_carry_host_files() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let (_dir, secret) = host_secret();
    s.sh(&sb, &format!("ln -s {secret} /link; echo mine > /mine"));
    let id = s.snapshot(&sb);
    s.wait_snapshot(&id, &["local_ready", "completed"]);
    let r = s.post_json(&format!("{P}/sandboxes"), &json!({"snapshot_id": id}));
    let restored = r.json()["sandbox_id"].as_str().unwrap().to_string();
    assert_eq!(s.read_file(&restored, "/mine").text(), "mine\n");
    let run = s.sh(&restored, "readlink /link; cat /link 2>&1");
    assert_eq!(run.stdout[0], secret, "the link itself is kept");
    assert!(
        !run.stdout.iter().any(|l| l.contains("HOST-SECRET-42")),
        "{run:?}"
    );
}

#[test]
fn without_bubblewrap_process_and_file_routes_answer_503() {
    let s = Server::start_in(
        temp_dir("nobwrap"),
        &[],
        &[("TENSORLAKE_LOCAL_BWRAP", "/nonexistent/bwrap")],
    );
    let sb = s.sandbox();
    for (method, path) in [
        ("POST", "/api/v1/processes/run"),
        ("GET", "/api/v1/processes"),
        ("GET", "/api/v1/files?path=%2Fx"),
        ("PUT", "/api/v1/files?path=%2Fx"),
    ] {
        let body = (method != "GET").then_some(&b"{\"command\":\"true\"}"[..]);
        let r = s.req(
            method,
            path,
            &[("X-Tensorlake-Sandbox-Id", sb.as_str())],
            body,
        );
        assert_eq!(r.status, 503, "{method} {path}");
        let v = r.json();
        assert_eq!(v["code"], "BUBBLEWRAP_MISSING");
        let msg = v["error"].as_str().unwrap();
        assert!(msg.contains("bubblewrap is missing"), "{msg}");
        assert!(msg.contains("/nonexistent/bwrap"), "{msg}");
    }
    // Every other route works.
    let id = s.snapshot(&sb);
    s.wait_snapshot(&id, &["completed"]);
    let r = s.post_json(&format!("{P}/sandboxes"), &json!({"snapshot_id": id}));
    assert_eq!(r.status, 200);
    common::eventually(10, "the start-up warning", || {
        s.stderr().contains("bubblewrap is missing")
    });
}

/// A line of the host's `/etc/passwd` that the image's does not have (the image has root,
/// daemon, user and nobody only).
fn host_only_passwd_line() -> Option<String> {
    std::fs::read_to_string("/etc/passwd").ok()?.lines().find(|l| {
        !["root:", "daemon:", "user:", "nobody:"].iter().any(|p| l.starts_with(p))
    }).map(str::to_string)
}
