//! What sandbox code can reach of the host and of other sandboxes without a file path or an
//! IP route: abstract Unix sockets (named in the network namespace, not the file system),
//! Unix sockets in the host's `/tmp`, another sandbox's loopback services, and processes (the
//! server, slirp4netns, other sandboxes) to signal or trace. Run as root (as CI does).

mod common;

use std::io::Write;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::net::{SocketAddr, UnixListener};
use std::time::Duration;

use common::{require_root, Server};
use serde_json::json;

fn ok(s: &Server, sb: &str, script: &str) -> Vec<String> {
    let run = s.run_body(
        sb,
        &json!({ "command": "sh", "args": ["-c", script], "timeout": 60 }),
    );
    assert_eq!(run.code(), 0, "{script}: {run:?}");
    run.stdout
}

#[test]
fn host_sockets_processes_and_other_sandboxes_are_out_of_reach() {
    require_root();
    // Listeners of the host's: one abstract, one in the host's /tmp. Each answers "host".
    let name = format!("tl-host-reach-{}", std::process::id());
    let abs = UnixListener::bind_addr(&SocketAddr::from_abstract_name(name.as_bytes()).unwrap())
        .unwrap();
    let path = std::env::temp_dir().join(format!("{name}.sock"));
    let _ = std::fs::remove_file(&path);
    let file = UnixListener::bind(&path).unwrap();
    for l in [abs, file] {
        std::thread::spawn(move || {
            for mut c in l.incoming().flatten() {
                let _ = c.write_all(b"host");
            }
        });
    }

    let s = Server::start(&[]);
    let a = s.sandbox();
    let b = s.sandbox();
    // Sandbox b: a loopback service and a long sleep, in the background.
    let body = json!({"command": "sh", "args": ["-c",
        "python3 -c 'import socket,time\ns=socket.socket(); s.bind((\"127.0.0.1\", 8765)); s.listen(); time.sleep(120)' & exec sleep 120"]});
    let r = s.req(
        "POST",
        "/api/v1/processes",
        &[("Content-Type", "application/json"), ("X-Tensorlake-Sandbox-Id", &b)],
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        ok(&s, &b, "python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", 8765)); print(\"up\")'"),
        ["up"],
        "the service runs in b"
    );

    let script = format!(
        r#"python3 - <<'EOF'
import errno, os, socket
def attempt(fn):
    try:
        fn()
        return "REACHED"
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
def unix(addr):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(addr)
    if s.recv(4) == b"host":
        raise SystemExit("host socket answered")
print("abstract", attempt(lambda: unix("\0{name}")))
print("tmp", attempt(lambda: unix("{path}")))
print("other-sandbox", attempt(lambda: socket.create_connection(("127.0.0.1", 8765), timeout=5)))
print("server-pid", attempt(lambda: os.kill({server}, 0)))
comms = sorted(open("/proc/%s/comm" % p).read().strip() for p in os.listdir("/proc") if p.isdigit())
print("procs", ",".join(comms))
print("sys", len(os.listdir("/sys")) if os.path.isdir("/sys") else 0)
EOF"#,
        path = path.display(),
        server = s.pid()
    );
    let out = ok(&s, &a, &script);
    let _ = std::fs::remove_file(&path);
    assert_eq!(out[0], "abstract ECONNREFUSED", "{out:?}");
    assert_eq!(out[1], "tmp ENOENT", "{out:?}");
    assert_eq!(out[2], "other-sandbox ECONNREFUSED", "{out:?}");
    assert_eq!(out[3], "server-pid ESRCH", "{out:?}");
    let procs = out[4].strip_prefix("procs ").unwrap();
    for p in procs.split(',') {
        assert!(
            matches!(p, "bwrap" | "sh" | "python3"),
            "only the command's own processes are visible: {procs}"
        );
    }
    assert_eq!(out[5], "sys 0", "no /sys of the host: {out:?}");
}

/// bwrap makes the mount points `/etc/ssl/certs` and `/etc/resolv.conf` in the sandbox's tree
/// before each command, as the sandbox's uid, from a mount namespace whose `/oldroot` is the
/// host's `/`. A sandbox that replaces `/etc/ssl` and `/etc/resolv.conf` with links to
/// `/oldroot/<a host directory it may write to>` (the file API removes the directories, a
/// command running meanwhile makes the links) must not make bwrap create anything there.
#[test]
fn links_at_the_jails_mount_points_do_not_lead_bwrap_to_the_host() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let host = common::Scratch::new("bwrap-target");
    std::fs::set_permissions(&*host, std::os::unix::fs::PermissionsExt::from_mode(0o777)).unwrap();
    let script = format!(
        "i=0; while [ $i -lt 60 ]; do \
           [ -L /etc/ssl ] || ln -s /oldroot{d} /etc/ssl 2>/dev/null; \
           [ -L /etc/resolv.conf ] || ln -s /oldroot{d}/resolv.conf /etc/resolv.conf 2>/dev/null; \
           sleep 0.05; i=$((i+1)); done",
        d = host.display()
    );
    let body = json!({"command": "sh", "args": ["-c", script]});
    let r = s.req(
        "POST",
        "/api/v1/processes",
        &[("Content-Type", "application/json"), ("X-Tensorlake-Sandbox-Id", &sb)],
        Some(body.to_string().as_bytes()),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    std::thread::sleep(Duration::from_millis(300));
    for p in ["/etc/ssl", "/etc/resolv.conf"] {
        let q = format!("/api/v1/files?path={}", common::urlencode(p));
        let r = s.req("DELETE", &q, &[("X-Tensorlake-Sandbox-Id", &sb)], None);
        assert_eq!(r.status, 204, "{p}: {}", r.text());
    }
    std::thread::sleep(Duration::from_secs(4));
    let listed = s.req(
        "GET",
        "/api/v1/files/list?path=%2Fetc",
        &[("X-Tensorlake-Sandbox-Id", &sb)],
        None,
    );
    assert!(listed.text().contains("\"ssl\""), "the link was made: {}", listed.text());
    // The next command's bwrap meets the links.
    let _ = s.sh(&sb, "true");
    let left: Vec<_> = std::fs::read_dir(&*host).unwrap().flatten().map(|e| e.file_name()).collect();
    assert!(left.is_empty(), "bwrap created {left:?} in a host directory");
}
