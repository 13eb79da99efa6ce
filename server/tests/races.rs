//! Races a client (or a crash of one) can start: transfers cut off halfway, a sandbox deleted
//! while a file is being uploaded into it, restores racing each other and a delete of their
//! snapshot. None may leak a transfer slot, a mount or a disk image, or answer a 5xx.
//! Run as root (as CI does): sandboxes then have disk images and mounts that could leak.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{require_root, Server};
use serde_json::json;

/// Opens a raw request and sends its head and `sent` bytes of a body announced as `len`.
fn start_upload(s: &Server, sb: &str, path: &str, len: usize, sent: usize) -> TcpStream {
    let mut t = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    let head = format!(
        "PUT /api/v1/files?path={path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Tensorlake-Sandbox-Id: {sb}\r\nContent-Length: {len}\r\n\r\n"
    );
    t.write_all(head.as_bytes()).unwrap();
    t.write_all(&vec![b'x'; sent]).unwrap();
    t
}

/// Takes all 16 transfer slots: 8 uploads announcing 10 MiB that send 1 MiB, and 8 downloads
/// of a 32 MiB file read for 64 KiB; none of them goes on.
fn take_every_slot(s: &Server, sb: &str) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for i in 0..8 {
        held.push(start_upload(s, sb, &format!("/data/u{i}"), 10 << 20, 1 << 20));
        let mut t = TcpStream::connect(("127.0.0.1", s.port)).unwrap();
        let head = format!(
            "GET /api/v1/files?path=/data/big HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Tensorlake-Sandbox-Id: {sb}\r\n\r\n"
        );
        t.write_all(head.as_bytes()).unwrap();
        let mut buf = vec![0u8; 64 << 10];
        t.read_exact(&mut buf).unwrap();
        held.push(t);
    }
    std::thread::sleep(Duration::from_millis(300));
    held
}

/// The file routes share 16 transfer slots. A client that leaves halfway must give its slot
/// back at once; one that stays connected but stops sending its body or reading the file loses
/// it after 30 s (the upload gets 408, the download ends short). Before, 16 stalled clients of
/// any local user made every later transfer of the server wait 30 s and fail with 503.
#[test]
fn transfers_cut_off_or_stalled_give_their_slots_back() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    assert_eq!(s.write_file(&sb, "/data/big", &vec![7u8; 32 << 20]).status, 204);
    drop(take_every_slot(&s, &sb));
    let r = s.write_file(&sb, "/data/after", b"fine");
    assert_eq!(r.status, 204, "after disconnects: {}", r.text());

    let mut held = take_every_slot(&s, &sb);
    std::thread::sleep(Duration::from_secs(32));
    let r = s.write_file(&sb, "/data/after", b"again");
    assert_eq!(r.status, 204, "after stalls: {}", r.text());
    assert_eq!(s.read_file(&sb, "/data/after").text(), "again");
    for (i, t) in held.iter_mut().enumerate() {
        t.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let mut raw = Vec::new();
        let got = t.read_to_end(&mut raw);
        assert!(got.is_ok(), "connection {i} was closed, not left hanging: {got:?}");
        if i % 2 == 0 {
            let head = String::from_utf8_lossy(&raw);
            assert!(head.starts_with("HTTP/1.1 408"), "{head}");
            assert!(head.contains("BODY_TIMEOUT"), "{head}");
        } else {
            assert!(raw.len() < (32 << 20) - (64 << 10), "download {i} was cut");
        }
    }
}

/// A sandbox deleted while a file is being uploaded into it: the delete answers at once, the
/// upload ends without a 5xx, and the sandbox's disk image is unmounted and removed (a mount
/// held open by the upload would leak a loop device per sandbox).
#[test]
fn deleting_a_sandbox_during_an_upload_leaks_no_mount() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let mut up = start_upload(&s, &sb, "/data/slow", 8 << 20, 1 << 20);
    std::thread::sleep(Duration::from_millis(200));
    let started = Instant::now();
    assert_eq!(s.delete(&format!("/v1/namespaces/default/sandboxes/{sb}")).status, 200);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
    // The rest of the body, then the answer: anything but a 5xx.
    let _ = up.write_all(&vec![b'y'; 7 << 20]);
    up.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    let mut raw = Vec::new();
    let _ = up.read_to_end(&mut raw);
    let head = String::from_utf8_lossy(&raw[..raw.len().min(40)]).into_owned();
    assert!(!head.starts_with("HTTP/1.1 5"), "{head}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let mounts = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
        let dir = s.data.join("sandboxes").join(&sb);
        if !mounts.contains(&sb) && !dir.exists() {
            break;
        }
        assert!(Instant::now() < deadline, "{} still mounted or present", dir.display());
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Three restores of one snapshot at once, and a delete of that snapshot among them: each
/// restore either has the whole file or is refused with a 4xx, and the archive is gone once
/// the last restore that pinned it is done.
#[test]
fn restores_racing_each_other_and_a_delete_of_their_snapshot() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let run = s.sh(&sb, "mkdir -p /data && head -c 16777216 /dev/urandom > /data/r && md5sum < /data/r");
    let want = run.stdout[0].clone();
    let snap = s.snapshot(&sb);
    s.wait_snapshot(&snap, &["local_ready", "completed"]);
    let port = s.port;
    let threads: Vec<_> = (0..4)
        .map(|i| {
            let snap = snap.clone();
            std::thread::spawn(move || {
                if i == 3 {
                    std::thread::sleep(Duration::from_millis(30));
                    let r = common::request(port, "DELETE", &format!("/v1/namespaces/default/snapshots/{snap}"), &[], None);
                    (r.status, String::new())
                } else {
                    let body = json!({ "snapshot_id": snap }).to_string();
                    let r = common::request(
                        port,
                        "POST",
                        "/v1/namespaces/default/sandboxes",
                        &[("Content-Type", "application/json")],
                        Some(body.as_bytes()),
                    );
                    let id = if r.status == 200 {
                        r.json()["sandbox_id"].as_str().unwrap().to_string()
                    } else {
                        String::new()
                    };
                    (r.status, id)
                }
            })
        })
        .collect();
    let results: Vec<_> = threads.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(results[3].0, 200, "the delete: {results:?}");
    for (status, id) in &results[..3] {
        assert!(*status == 200 || (400..500).contains(status), "{results:?}");
        if *status == 200 {
            let run = s.sh(id, "md5sum < /data/r");
            assert_eq!(run.stdout, [want.clone()], "{results:?}");
        }
    }
    let archive = s.data.join("snapshots").join(format!("{snap}.tar.zst"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while archive.exists() {
        assert!(Instant::now() < deadline, "the archive outlived its snapshot");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(s.get(&format!("/v1/namespaces/default/snapshots/{snap}")).status, 404);
}
