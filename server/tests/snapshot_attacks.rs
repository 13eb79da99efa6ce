//! Sandbox code attacking the snapshotter: trees crafted so that the server, reading them as
//! root while it archives the sandbox's layer, writes far more than the sandbox's disk holds,
//! reads for hours, hangs, or is led out of the tree; and overlayfs markers (whiteouts, opaque
//! directories) forged from inside. Run as root (as CI does): layers need overlay mounts.

mod common;

use common::{require_root, Server};
use serde_json::{json, Value};

/// Output lines of `script` run with `sh -c`, asserting it exits 0.
fn ok(s: &Server, sb: &str, script: &str) -> Vec<String> {
    let run = s.run_body(
        sb,
        &json!({ "command": "sh", "args": ["-c", script], "timeout": 300 }),
    );
    assert_eq!(run.code(), 0, "{script}: {run:?}");
    run.stdout
}

fn finished(s: &Server, sb: &str) -> Value {
    let id = s.snapshot(sb);
    s.wait_snapshot(&id, &["local_ready", "completed", "failed"])
}

fn restore(s: &Server, snap: &Value) -> String {
    s.sandbox_with(json!({ "snapshot_id": snap["id"] }))
}

/// A file linked 200 times was archived 200 times: 4 MiB of random data in the sandbox made an
/// 800 MiB archive (a 1 GiB file linked 65,000 times would fill the host's disk). Each further
/// link is now a link entry, and the restore links the files again.
#[test]
fn hard_links_do_not_multiply_a_sandbox_into_its_archive() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    ok(
        &s,
        &sb,
        "mkdir -p /data/l && head -c 4194304 /dev/urandom > /data/big && \
         i=0; while [ $i -lt 200 ]; do ln /data/big /data/l/$i; i=$((i+1)); done",
    );
    let want = ok(&s, &sb, "md5sum < /data/big");
    let snap = finished(&s, &sb);
    assert_ne!(snap["status"], "failed", "{snap}");
    let size = snap["size_bytes"].as_u64().unwrap();
    assert!(size < 6 << 20, "a 4 MiB file with 200 links made a {size}-byte archive");
    let r = restore(&s, &snap);
    let out = ok(
        &s,
        &r,
        "md5sum < /data/l/199; stat -c %i /data/big /data/l/0 /data/l/199 | sort -u | wc -l",
    );
    assert_eq!(out[0], want[0], "the content came back");
    assert_eq!(out[1].trim(), "1", "the links are links again: {out:?}");
}

/// A sparse file as large as ext4 allows costs the sandbox 4 KiB, but a restore reads its holes
/// as zeros: 8 TiB took most of an hour. Files adding up to more than twice the sandbox's disk
/// now fail the snapshot at once, naming the file, and the sandbox snapshots again once it is
/// gone.
#[test]
fn a_sparse_file_far_larger_than_the_disk_fails_the_snapshot_naming_it() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox_with(json!({"resources": {"cpus": 1.0, "memory_mb": 512, "disk_mb": 1024}}));
    ok(&s, &sb, "mkdir -p /data && truncate -s 8T /data/huge && echo kept > /data/small");
    let snap = finished(&s, &sb);
    assert_eq!(snap["status"], "failed", "{snap}");
    let err = snap["error"].as_str().unwrap();
    assert!(err.contains("/data/huge") && err.contains("disk"), "{err}");
    assert!(!err.contains(s.data.to_str().unwrap()), "no host path: {err}");
    ok(&s, &sb, "rm /data/huge && truncate -s 1G /data/sparse-ok");
    let snap = finished(&s, &sb);
    assert_ne!(snap["status"], "failed", "{snap}");
    let r = restore(&s, &snap);
    assert_eq!(ok(&s, &r, "cat /data/small; stat -c %s /data/sparse-ok"), ["kept", "1073741824"]);
}

/// FIFOs and sockets in the layer, and a directory swapped for a link to `/` over and over while
/// the snapshot walks: the snapshot neither hangs on the FIFO nor archives anything of the host,
/// and the restore has the sandbox's own files.
#[test]
fn fifos_sockets_and_a_directory_swapped_for_a_link_mid_walk() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    ok(
        &s,
        &sb,
        "mkdir -p /data/d/sub && echo mine > /data/stable && mkfifo /data/fifo && \
         python3 -c 'import socket; socket.socket(socket.AF_UNIX).bind(\"/data/sock\")' && \
         i=0; while [ $i -lt 300 ]; do mkdir -p /data/d/n$i; echo $i > /data/d/n$i/x; i=$((i+1)); done",
    );
    // Swaps /data/d for a link to / and back, as fast as it can, in the background.
    let body = json!({"command": "sh", "args": ["-c",
        "while :; do mv /data/d /data/e; ln -s / /data/d; rm /data/d; mv /data/e /data/d; done"]});
    let r = s.req(
        "POST",
        "/api/v1/processes",
        &[("Content-Type", "application/json"), ("X-Tensorlake-Sandbox-Id", &sb)],
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let mut snaps = Vec::new();
    for _ in 0..3 {
        let snap = finished(&s, &sb);
        assert_ne!(snap["status"], "failed", "{snap}");
        snaps.push(snap);
    }
    for snap in &snaps {
        let r = restore(&s, snap);
        let out = ok(
            &s,
            &r,
            "ls /data/fifo /data/sock 2>/dev/null | wc -l; \
             cat /data/stable; \
             find /data -path '*etc*' -o -path '*proc*' | wc -l",
        );
        assert_eq!(out[0], "0", "FIFOs and sockets are not restored: {out:?}");
        assert_eq!(out[1], "mine", "the files nobody moved are there: {out:?}");
        assert_eq!(out[2], "0", "nothing of the host's / was archived: {out:?}");
    }
}

/// overlayfs reads `trusted.overlay.*` attributes and character devices 0/0 in the upper layer
/// as its own markers (opaque directories, redirects, metacopy, whiteouts). Forged from inside,
/// they could hide or redirect files of the image for the host's mount or confuse the layer a
/// snapshot stores. Sandbox code has no capability in the host's user namespace, so each is
/// refused; a `user.overlay.opaque` it may set is not a marker of these mounts and is not
/// archived, so the image's `/etc` stays visible after a restore.
#[test]
fn overlay_markers_cannot_be_forged_from_inside() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let script = r#"python3 - <<'EOF'
import errno, os, stat, struct
out = []
# A valid v2 file capability (CAP_SYS_ADMIN permitted): refused for want of CAP_SETFCAP.
cap = struct.pack("<IIIII", 0x02000001, 1 << 21, 0, 0, 0)
os.makedirs("/data/o", exist_ok=True)
for name in ["trusted.overlay.opaque", "trusted.overlay.redirect", "trusted.overlay.metacopy",
             "trusted.overlay.origin", "security.capability"]:
    for path in ["/etc", "/data/o"]:
        try:
            os.setxattr(path, name, cap if name == "security.capability" else b"y")
            out.append(name + " set on " + path)
        except OSError as e:
            out.append(name + " " + errno.errorcode[e.errno])
try:
    os.mknod("/data/o/wh", 0o600 | stat.S_IFCHR, os.makedev(0, 0))
    out.append("mknod 0/0 made")
except OSError as e:
    out.append("mknod " + errno.errorcode[e.errno])
try:
    os.setxattr("/etc", "user.overlay.opaque", b"y")
except OSError as e:
    pass
print("\n".join(out))
EOF"#;
    let lines = ok(&s, &sb, script);
    assert_eq!(lines.len(), 11, "{lines:?}");
    for l in &lines {
        assert!(l.ends_with(" EPERM"), "refused: {lines:?}");
    }
    assert_eq!(ok(&s, &sb, "test -f /etc/os-release && echo seen"), ["seen"]);
    let snap = finished(&s, &sb);
    assert_ne!(snap["status"], "failed", "{snap}");
    let r = restore(&s, &snap);
    assert_eq!(
        ok(&s, &r, "test -f /etc/os-release && test -f /etc/passwd && echo seen"),
        ["seen"]
    );
}

/// One directory with 480,000 names of 250 bytes (hard links of a few files: names cost the
/// sandbox no inode, only directory blocks): the snapshot held every name of a directory to sort
/// it, and a sandbox's tens of millions would exhaust the host's memory. The names a snapshot
/// holds are now bounded (128 MiB); past that it fails naming the directory, and the server
/// answers on.
#[test]
fn a_directory_of_too_many_names_fails_the_snapshot_naming_it() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let script = "python3 - <<'EOF'
import os
os.makedirs('/data/wide')
for f in range(8):
    src = '/data/src%d' % f
    open(src, 'w').close()
    for i in range(60000):
        os.link(src, '/data/wide/%0250d' % (f * 60000 + i))
EOF";
    ok(&s, &sb, script);
    let snap = finished(&s, &sb);
    assert_eq!(snap["status"], "failed", "{snap}");
    let err = snap["error"].as_str().unwrap();
    assert!(err.contains("/data/wide") && err.contains("names"), "{err}");
    ok(&s, &sb, "rm -rf /data/wide");
    let snap = finished(&s, &sb);
    assert_ne!(snap["status"], "failed", "{snap}");
}
