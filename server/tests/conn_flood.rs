//! A local user opens hundreds of connections that send nothing. Each held a descriptor of the
//! server's, until none was left for the archive a snapshot was writing. Run as root (as CI
//! does).

mod common;

use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::time::Duration;

use common::{require_root, temp_dir, Server};
use serde_json::json;

#[test]
fn idle_connections_cannot_take_the_descriptors_the_server_works_with() {
    require_root();
    // A small descriptor limit (soft and hard), as a desktop's 1,024 is, so that a few hundred
    // connections reach it.
    let s = with_descriptor_limit(256, 256);
    let sb = s.sandbox();
    // A large file archived first, then 3,000 small ones, each opened while the flood is on.
    let run = s.run_body(
        &sb,
        &json!({"command": "sh", "args": ["-c",
            "mkdir -p /data/many && head -c 100000000 /dev/urandom > /data/0big && cd /data/many && \
             i=0; while [ $i -lt 3000 ]; do echo $i > f$i; i=$((i+1)); done"],
            "timeout": 120}),
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let snap = s.snapshot(&sb);
    // Until the accept queue is full too (connect then times out).
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], s.port));
    let mut flood = Vec::new();
    let mut misses = 0;
    while flood.len() < 400 && misses < 3 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(t) => flood.push(t),
            Err(_) => misses += 1,
        }
    }
    assert!(flood.len() >= 128, "the flood connected ({})", flood.len());
    std::thread::sleep(Duration::from_secs(4));
    drop(flood);
    let v = s.wait_snapshot(&snap, &["local_ready", "completed", "failed"]);
    assert_ne!(v["status"], "failed", "{v}");
    let r = s.sandbox_with(json!({"snapshot_id": snap}));
    let run = s.sh(&r, "ls /data/many | wc -l");
    assert_eq!(run.stdout, ["3000"], "{run:?}");
}

#[test]
fn sandboxes_keep_the_descriptor_limit_the_server_started_with() {
    require_root();
    // The server raises its own soft limit to the hard one for connections; its sandboxes must
    // not inherit that (a sandbox's `ulimit -n` would follow the host's hard limit).
    let s = with_descriptor_limit(512, 4096);
    let sb = s.sandbox();
    let run = s.sh(&sb, "ulimit -n");
    assert_eq!(run.stdout, ["512"], "{run:?}");
}

/// A server started with the descriptor limits `soft` and `hard`.
fn with_descriptor_limit(soft: libc::rlim_t, hard: libc::rlim_t) -> Server {
    Server::start_with(temp_dir("data"), &[], &[], move |cmd| {
        // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(move || {
                let l = libc::rlimit { rlim_cur: soft, rlim_max: hard };
                if libc::setrlimit(libc::RLIMIT_NOFILE, &l) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    })
}
