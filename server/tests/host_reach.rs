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
