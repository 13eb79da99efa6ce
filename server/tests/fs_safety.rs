//! Filesystem safety of restore, delete and the file routes: links a sandbox plants never make
//! the server touch host files, setuid bits never survive, deep trees and sparse files are
//! handled without crashing or filling the disk, special files give 4xx, and file bodies are
//! streamed.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{eventually, Scratch, Server};
use serde_json::json;

const P: &str = "/v1/namespaces/default";

/// Snapshots `sb`, waits until it is restorable, and restores it; returns the answer.
fn snapshot_and_restore(s: &Server, sb: &str) -> common::Resp {
    let snap = s.snapshot(sb);
    let v = s.wait_snapshot(&snap, &["local_ready", "completed", "failed"]);
    assert_ne!(v["status"], "failed", "{v}");
    s.post_json(&format!("{P}/sandboxes"), &json!({ "snapshot_id": snap }))
}

fn restored_id(r: &common::Resp) -> String {
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["sandbox_id"].as_str().unwrap().to_string()
}

/// A host directory made by the test, mode 0755, for a sandbox to point a link at.
fn host_dir(tag: &str) -> Scratch {
    let d = Scratch::new(tag);
    std::fs::set_permissions(&*d, std::fs::Permissions::from_mode(0o755)).unwrap();
    d
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().mode() & 0o7777
}

fn names(p: &Path) -> Vec<String> {
    std::fs::read_dir(p)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Whether any path under `dir` (three levels) has a name containing `needle`.
fn mentions(dir: &Path, needle: &str, depth: u32) -> bool {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return false;
    };
    rd.flatten().any(|e| {
        e.file_name().to_string_lossy().contains(needle)
            || (depth > 0
                && e.file_type().map(|t| t.is_dir()).unwrap_or(false)
                && mentions(&e.path(), needle, depth - 1))
    })
}

/// Replaces the sandbox's `/{dir}` with a link to `target` (in or at the host directory `host`),
/// snapshots and restores: the restore must not answer 5xx, must leave `host` as it was, and a
/// restored sandbox keeps the link as the sandbox left it.
fn restore_leaves_a_linked_host_directory_alone(dir: &str, host: &Path, target: &Path) {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let run = s.sh(&sb, &format!("rm -rf /{dir} && ln -s {} /{dir}", target.display()));
    assert_eq!(run.code(), 0, "{:?}", run.stderr);
    let r = snapshot_and_restore(&s, &sb);
    assert!(r.status < 500, "restore answered {}: {}", r.status, r.text());
    assert_eq!(mode(host), 0o755, "the restore changed a host directory's mode");
    assert!(names(host).is_empty(), "the restore created {:?}", names(host));
    if r.status == 200 {
        let id = restored_id(&r);
        assert_eq!(s.sh(&id, &format!("readlink /{dir}")).stdout, vec![target.display().to_string()]);
    }
}

#[test]
fn tmp_linked_to_a_host_directory_is_left_alone_by_restore() {
    let host = host_dir("host-tmp");
    restore_leaves_a_linked_host_directory_alone("tmp", &host, &host);
}

#[test]
fn root_linked_into_a_host_directory_is_left_alone_by_restore() {
    let host = host_dir("host-root");
    restore_leaves_a_linked_host_directory_alone("root", &host, &host.join("never-created"));
}

#[test]
fn setuid_and_setgid_bits_do_not_survive_a_snapshot() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let run = s.sh(
        &sb,
        "mkdir -p /data && cp /usr/bin/id /data/x && chmod 4755 /data/x && \
         cp /usr/bin/id /data/y && chmod 2755 /data/y && stat -c %a /data/x /data/y",
    );
    assert_eq!(run.stdout, vec!["4755", "2755"], "{:?}", run.stderr);
    let snap = s.snapshot(&sb);
    s.wait_snapshot(&snap, &["local_ready", "completed"]);
    // In the archive itself.
    let archive = find_archive(&s.data, &snap).expect("the snapshot's archive");
    let gz = flate2_free_modes(&archive);
    assert!(!gz.is_empty());
    for (name, m) in &gz {
        assert_eq!(m & 0o6000, 0, "{name} has mode {m:o} in the archive");
    }
    let r = s.post_json(&format!("{P}/sandboxes"), &json!({ "snapshot_id": snap }));
    let id = restored_id(&r);
    let out = s.sh(&id, "stat -c %a /data/x /data/y");
    assert_eq!(out.stdout, vec!["755", "755"]);
}

/// The archive file of snapshot `snap` under the data directory.
fn find_archive(dir: &Path, snap: &str) -> Option<PathBuf> {
    for e in std::fs::read_dir(dir).ok()?.flatten() {
        let p = e.path();
        if e.file_type().ok()?.is_dir() {
            if let Some(found) = find_archive(&p, snap) {
                return Some(found);
            }
        } else if e.file_name().to_string_lossy().starts_with(snap)
            && e.file_name().to_string_lossy().ends_with(".tar.zst")
        {
            return Some(p);
        }
    }
    None
}

/// (name, mode) of every entry of a snapshot archive (`.tar.zst`).
fn flate2_free_modes(archive: &Path) -> Vec<(String, u32)> {
    let zst = zstd::stream::read::Decoder::new(std::fs::File::open(archive).unwrap()).unwrap();
    let mut t = tar::Archive::new(zst);
    t.entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = String::from_utf8_lossy(&e.path_bytes()).into_owned();
            (name, e.header().mode().unwrap())
        })
        .collect()
}

#[test]
fn poisoned_root_and_tmp_restore_without_a_5xx() {
    let s = Server::start(&[]);
    let a = s.sandbox();
    let run = s.sh(&a, "rm -rf /root && ln -s /nonexistent/home /root");
    assert_eq!(run.code(), 0, "{:?}", run.stderr);
    let r = snapshot_and_restore(&s, &a);
    assert!(
        r.status == 200 || (400..500).contains(&r.status),
        "dangling /root: {} {}",
        r.status,
        r.text()
    );
    let b = s.sandbox();
    let run = s.sh(&b, "rm -rf /tmp && echo not-a-dir > /tmp");
    assert_eq!(run.code(), 0, "{:?}", run.stderr);
    let r = snapshot_and_restore(&s, &b);
    assert!(
        r.status == 200 || (400..500).contains(&r.status),
        "/tmp a file: {} {}",
        r.status,
        r.text()
    );
    if r.status == 200 {
        let id = restored_id(&r);
        let out = s.read_file(&id, "/tmp");
        assert_eq!(out.text(), "not-a-dir\n");
    }
}

/// Removes a data directory with `rm -rf` when dropped: the harness's `remove_dir_all` recurses
/// and would overflow the test's own stack on a tree left behind by a failed test. Declared
/// after the server, so it runs first.
struct RmRf(PathBuf);

impl Drop for RmRf {
    fn drop(&mut self) {
        let _ = std::process::Command::new("rm")
            .arg("-rf")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_100000_deep_tree_snapshots_restores_and_is_deleted() {
    let s = Server::start(&[]);
    let _cleanup = RmRf(s.data.clone());
    let sb = s.sandbox();
    let t0 = Instant::now();
    let run = s.run(
        &sb,
        "python3",
        &[
            "-c",
            "import os\nos.makedirs('/data', exist_ok=True)\nos.chdir('/data')\n\
             for _ in range(100000):\n    os.mkdir('d')\n    os.chdir('d')\n\
             open('leaf', 'w').write('bottom')\n",
        ],
    );
    assert_eq!(run.code(), 0, "{:?}", run.stderr);
    eprintln!("tree made in {:?}", t0.elapsed());
    let t0 = Instant::now();
    let r = snapshot_and_restore(&s, &sb);
    let restored = restored_id(&r);
    eprintln!("snapshot + restore in {:?}", t0.elapsed());
    let check = "import os\nos.chdir('/data')\nfor _ in range(100000):\n    os.chdir('d')\n\
                 print(open('leaf').read())\n";
    let out = s.run(&restored, "python3", &["-c", check]);
    assert_eq!(out.stdout, vec!["bottom"], "{:?}", out.stderr);

    // Delete: the server stays up and the tree goes.
    assert_eq!(s.delete(&format!("{P}/sandboxes/{sb}")).status, 200);
    eventually(120, "the deleted sandbox's files to go", || {
        !mentions(&s.data, &sb, 3)
    });
    assert_eq!(s.get(&format!("{P}/sandboxes")).status, 200);

    // The restored tree is left to the server's stop and to RmRf: removing a 100,000-deep
    // tree costs about a minute of this disk's discards, whoever does it.
}

/// Makes a `depth`-deep chain of directories under /data in `sandbox`.
fn deep_tree(s: &Server, sandbox: &str, depth: u32) {
    let script = format!(
        "import os\nos.makedirs('/data', exist_ok=True)\nos.chdir('/data')\n\
         for _ in range({depth}):\n    os.mkdir('d')\n    os.chdir('d')\n"
    );
    let run = s.run(sandbox, "python3", &["-c", &script]);
    assert_eq!(run.code(), 0, "{:?}", run.stderr);
}

#[test]
fn a_deep_tree_left_by_a_killed_server_is_removed_at_the_next_start() {
    // 20,000 levels: deep enough for a recursive removal to fail (one descriptor or stack frame
    // per level), shallow enough to be removed within the harness's start-up wait.
    let s = Server::start(&[]);
    let _cleanup = RmRf(s.data.clone());
    let sb = s.sandbox();
    deep_tree(&s, &sb, 20_000);
    assert_eq!(s.delete(&format!("{P}/sandboxes/{sb}")).status, 200);
    let data = s.kill9();
    let s = Server::start_in(data.clone(), &[], &[]);
    let _cleanup_again = RmRf(data);
    assert!(
        !mentions(&s.data, &sb, 3),
        "a leftover tree survived the restart"
    );
    assert_eq!(s.get(&format!("{P}/sandboxes")).status, 200);
}

#[test]
fn a_10_gib_sparse_file_round_trips_and_stays_sparse() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let run = s.sh(
        &sb,
        "mkdir -p /data && truncate -s 10G /data/sparse && \
         printf middle | dd of=/data/sparse bs=1 seek=5000000000 conv=notrunc 2>/dev/null && \
         printf end >> /data/sparse && stat -c '%s %b' /data/sparse",
    );
    assert_eq!(run.code(), 0, "{:?}", run.stderr);
    let t0 = Instant::now();
    let r = snapshot_and_restore(&s, &sb);
    let id = restored_id(&r);
    eprintln!("sparse snapshot + restore in {:?}", t0.elapsed());
    let out = s.sh(
        &id,
        "stat -c '%s %b %B' /data/sparse; dd if=/data/sparse bs=1 skip=5000000000 count=6 2>/dev/null; echo; \
         tail -c 3 /data/sparse; echo",
    );
    let fields: Vec<u64> = out.stdout[0]
        .split(' ')
        .map(|f| f.parse().unwrap())
        .collect();
    assert_eq!(fields[0], 10 * 1024 * 1024 * 1024 + 3);
    let on_disk = fields[1] * fields[2];
    assert!(
        on_disk < 64 << 20,
        "restored file uses {on_disk} bytes on disk"
    );
    assert_eq!(out.stdout[1], "middle");
    assert_eq!(out.stdout[2], "end");
}

#[test]
fn put_onto_a_fifo_is_a_quick_4xx() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let run = s.sh(&sb, "mkdir -p /data && mkfifo /data/fifo");
    assert_eq!(run.code(), 0, "{:?}", run.stderr);
    let t0 = Instant::now();
    let r = s.write_file(&sb, "/data/fifo", b"hello");
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("/data/fifo"));
    assert!(t0.elapsed() < Duration::from_secs(20));
    let r = s.read_file(&sb, "/data/fifo");
    assert!((400..500).contains(&r.status), "{} {}", r.status, r.text());
}

#[test]
fn put_errors_from_the_filesystem_are_4xx_naming_the_path() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let run = s.sh(
        &sb,
        "mkdir -p /data && echo f > /data/file && ln -s /data/loop /data/loop",
    );
    assert_eq!(run.code(), 0, "{:?}", run.stderr);
    let long = format!("/data/{}", "n".repeat(300));
    for path in ["/data/file/below", "/data/loop", long.as_str()] {
        let r = s.write_file(&sb, path, b"x");
        assert!(
            (400..500).contains(&r.status),
            "{path}: {} {}",
            r.status,
            r.text()
        );
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains(&path[..20.min(path.len())]), "{path}: {msg}");
    }
}

#[test]
fn put_drops_setuid_bits_and_streams_up_to_the_limit() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let run = s.sh(
        &sb,
        "mkdir -p /data && cp /usr/bin/id /data/s && chmod 6755 /data/s",
    );
    assert_eq!(run.code(), 0, "{:?}", run.stderr);
    assert_eq!(s.write_file(&sb, "/data/s", b"#!/bin/sh\n").status, 204);
    assert_eq!(s.sh(&sb, "stat -c %a /data/s").stdout, vec!["755"]);

    // Exactly the limit is fine; a declared or chunked body over it is a 413.
    let limit = 64 * 1024 * 1024;
    let big = vec![7u8; limit];
    assert_eq!(s.write_file(&sb, "/data/big", &big).status, 204);
    assert_eq!(
        s.sh(&sb, "stat -c %s /data/big").stdout,
        vec![limit.to_string()]
    );
    let over = vec![7u8; limit + 1];
    let r = s.write_file(&sb, "/data/over", &over);
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(s.read_file(&sb, "/data/over").status, 404);
    let mut chunked = Vec::new();
    for _ in 0..65 {
        chunked.extend_from_slice(format!("{:x}\r\n", 1024 * 1024).as_bytes());
        chunked.extend_from_slice(&vec![b'x'; 1024 * 1024]);
        chunked.extend_from_slice(b"\r\n");
    }
    chunked.extend_from_slice(b"0\r\n\r\n");
    let q = format!("/api/v1/files?path={}", common::urlencode("/data/chunked"));
    let r = s.req(
        "PUT",
        &q,
        &[
            ("X-Tensorlake-Sandbox-Id", sb.as_str()),
            ("Transfer-Encoding", "chunked"),
        ],
        Some(&chunked),
    );
    assert_eq!(r.status, 413, "{}", r.text());
    assert_eq!(s.sh(&sb, "stat -c %s /data/chunked").stdout, vec!["0"]);
}

/// Peak resident memory of a process, in bytes.
fn vm_hwm(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .expect("VmHWM");
    line.split_whitespace()
        .nth(1)
        .unwrap()
        .parse::<u64>()
        .unwrap()
        * 1024
}

/// GETs a file, waits `pause` before reading the body, and returns (status, body bytes),
/// reading in chunks so the test itself does not hold the file.
fn slow_get(port: u16, sandbox: &str, path: &str, pause: Duration) -> (u16, u64) {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let q = format!("/api/v1/files?path={}", common::urlencode(path));
    write!(
        s,
        "GET {q} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nX-Tensorlake-Sandbox-Id: {sandbox}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    std::thread::sleep(pause);
    let mut r = BufReader::with_capacity(64 * 1024, s);
    let mut line = String::new();
    r.read_line(&mut line).unwrap();
    let status: u16 = line.split(' ').nth(1).unwrap().parse().unwrap();
    loop {
        line.clear();
        r.read_line(&mut line).unwrap();
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    let mut buf = vec![0u8; 64 * 1024];
    let mut total = 0u64;
    loop {
        match r.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => total += n as u64,
            Err(e) => panic!("reading the body: {e}"),
        }
    }
    (status, total)
}

#[test]
fn forty_concurrent_reads_of_a_64_mib_file_do_not_hold_it_forty_times() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let run = s.sh(
        &sb,
        "mkdir -p /data && head -c 67108864 /dev/urandom > /data/big",
    );
    assert_eq!(run.code(), 0, "{:?}", run.stderr);
    let before = vm_hwm(s.pid());
    let port = s.port;
    let threads: Vec<_> = (0..40)
        .map(|_| {
            let sb = sb.clone();
            std::thread::spawn(move || slow_get(port, &sb, "/data/big", Duration::from_secs(1)))
        })
        .collect();
    for t in threads {
        let (status, len) = t.join().unwrap();
        assert_eq!(status, 200);
        assert_eq!(len, 64 * 1024 * 1024);
    }
    let after = vm_hwm(s.pid());
    let grown = after.saturating_sub(before);
    eprintln!("server peak RSS {before} -> {after} bytes");
    assert!(grown < 512 << 20, "peak RSS grew by {grown} bytes");
}

/// A sandbox fills a directory with 100,001 long names, for whoever lists it: 300,000 of them
/// took the server 680 MB (a few million would exhaust the host's memory). Past 100,000 entries
/// a listing is a 400 that says so; up to it, the listing is complete and sorted.
#[test]
fn listing_a_directory_the_sandbox_filled_is_bounded() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let run = s.run_body(
        &sb,
        &json!({"command": "python3", "args": ["-c",
            "import os\nos.makedirs('/data/m')\nfor i in range(100001): open('/data/m/%0200d' % i, 'w').close()\nos.makedirs('/data/few')\nfor i in range(3): open('/data/few/%d' % (2 - i), 'w').close()"],
            "timeout": 300}),
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let list = |p: &str| {
        s.req(
            "GET",
            &format!("/api/v1/files/list?path={}", common::urlencode(p)),
            &[("X-Tensorlake-Sandbox-Id", &sb)],
            None,
        )
    };
    let r = list("/data/m");
    assert_eq!(r.status, 400, "{}", &r.text()[..r.text().len().min(300)]);
    assert_eq!(r.json()["code"], "TOO_MANY_ENTRIES");
    assert!(r.json()["error"].as_str().unwrap().contains("/data/m"));
    let r = list("/data/few");
    assert_eq!(r.status, 200, "{}", r.text());
    let names: Vec<_> = r.json()["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, ["0", "1", "2"]);
    assert_eq!(r.json()["entries"][0]["size"], 0);
    assert_eq!(r.json()["entries"][0]["is_dir"], false);
    // One entry fewer is listed whole.
    assert_eq!(s.sh(&sb, "rm /data/m/$(printf '%0200d' 0)").code(), 0);
    let r = list("/data/m");
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["entries"].as_array().unwrap().len(), 100_000);
}
