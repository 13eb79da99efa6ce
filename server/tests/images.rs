//! The default image: a root that looks like a small distribution, a `pip` that installs, each
//! sandbox's writes in its own layer over a read-only base, snapshots of only that layer
//! (deletions included), old `.tar.gz` archives, unknown images, and the limits a restore asks
//! for. Run as root (as CI does): layers need overlay mounts.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};

use common::{require_root, temp_dir, Server};
use serde_json::{json, Value};

const P: &str = "/v1/namespaces/default";

fn restore(s: &Server, snap: &str, resources: Value) -> String {
    s.sandbox_with(json!({ "snapshot_id": snap, "resources": resources }))
}

fn snapshot(s: &Server, sb: &str) -> Value {
    let id = s.snapshot(sb);
    s.wait_snapshot(&id, &["local_ready", "completed"])
}

/// Output lines of `script` run with `sh -c`, asserting it exits 0.
fn ok(s: &Server, sb: &str, script: &str) -> Vec<String> {
    let run = s.run_body(
        sb,
        &json!({ "command": "sh", "args": ["-c", script], "timeout": 120 }),
    );
    assert_eq!(run.code(), 0, "{script}: {run:?}");
    run.stdout
}

/// A script that writes a minimal pure-Python wheel, `tinypkg` 1.0, to /tmp: `pip install`
/// of it needs no network.
const MAKE_WHEEL: &str = r#"python3 - <<'EOF'
import base64, hashlib, zipfile
files = {
    "tinypkg/__init__.py": "VALUE = 42\n",
    "tinypkg-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: tinypkg\nVersion: 1.0\n",
    "tinypkg-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
}
record = []
for name, text in files.items():
    digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
    record.append(f"{name},sha256={digest},{len(text)}")
record.append("tinypkg-1.0.dist-info/RECORD,,")
files["tinypkg-1.0.dist-info/RECORD"] = "\n".join(record) + "\n"
with zipfile.ZipFile("/tmp/tinypkg-1.0-py3-none-any.whl", "w") as z:
    for name, text in files.items():
        z.writestr(name, text)
EOF"#;

fn images_dir(s: &Server) -> PathBuf {
    s.data.join("images")
}

/// Whether any file named `name` is under `dir` (links not followed).
fn found_under(dir: &Path, name: &str) -> bool {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            if e.file_name() == name {
                return true;
            }
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                stack.push(e.path());
            }
        }
    }
    false
}

#[test]
fn the_default_image_has_etc_data_home_python_and_a_pip_that_installs() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let out = ok(
        &s,
        &sb,
        "test -d /etc && test -d /data && test -d /home && test -s /etc/passwd && \
         test -s /etc/ssl/certs/ca-certificates.crt && \
         python --version && python3 --version && pip --version >/dev/null && echo fine",
    );
    assert!(out.iter().any(|l| l.starts_with("Python 3")), "{out:?}");
    assert_eq!(out.last().map(String::as_str), Some("fine"), "{out:?}");
    // No PEP 668 refusal: a root `pip install` goes to /usr/local, as in the cloud image.
    ok(&s, &sb, MAKE_WHEEL);
    let out = ok(
        &s,
        &sb,
        "pip install --no-index /tmp/tinypkg-1.0-py3-none-any.whl 2>&1 && \
         python -c 'import tinypkg; print(\"value\", tinypkg.VALUE)'",
    );
    assert!(out.iter().any(|l| l == "value 42"), "{out:?}");
    assert!(
        !out.iter().any(|l| l.contains("externally-managed")),
        "{out:?}"
    );
    // /data is the sandbox's to write; the host's /usr is not.
    ok(&s, &sb, "echo a,b > /data/output.csv && cat /data/output.csv");
    let run = s.sh(&sb, "echo x > /usr/bin/python3");
    assert_ne!(run.code(), 0, "{run:?}");
    // The package is in the sandbox's layer only: not in the base, not on the host.
    assert!(!found_under(&images_dir(&s), "tinypkg"));
    assert!(!Path::new("/usr/local/lib/python3.11/dist-packages/tinypkg").exists());
    let other = s.sandbox();
    let run = s.sh(&other, "python -c 'import tinypkg'");
    assert_ne!(run.code(), 0, "{run:?}");
}

#[test]
fn writes_and_deletions_stay_in_the_sandbox_and_never_reach_the_base() {
    require_root();
    let s = Server::start(&[]);
    let a = s.sandbox();
    let b = s.sandbox();
    ok(
        &s,
        &a,
        "rm /etc/hosts && echo mine > /etc/mine && echo changed > /etc/hostname && rm -rf /home/user",
    );
    let out = ok(&s, &b, "cat /etc/hostname; test -f /etc/hosts && test -d /home/user && test ! -e /etc/mine && echo intact");
    assert_eq!(out, vec!["sandbox", "intact"]);
    let base = std::fs::read_dir(images_dir(&s))
        .unwrap()
        .flatten()
        .map(|e| e.path().join("root"))
        .find(|p| p.is_dir())
        .unwrap();
    assert!(base.join("etc/hosts").is_file());
    assert!(!base.join("etc/mine").exists());
    assert_eq!(std::fs::read_to_string(base.join("etc/hostname")).unwrap(), "sandbox\n");
}

#[test]
fn a_snapshot_keeps_only_the_layer_and_restores_files_packages_and_deletions() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    ok(&s, &sb, MAKE_WHEEL);
    ok(
        &s,
        &sb,
        "pip install --no-index /tmp/tinypkg-1.0-py3-none-any.whl >/dev/null 2>&1 && \
         echo a,b > /data/output.csv && rm /etc/hosts && \
         rm -rf /etc/skel && mkdir /etc/skel && echo only > /etc/skel/new",
    );
    let snap = snapshot(&s, &sb);
    // The layer, not the image: a few KB, where the base alone is hundreds.
    let size = snap["size_bytes"].as_u64().unwrap();
    assert!(size < 64 * 1024, "snapshot of {size} bytes");
    let restored = restore(&s, snap["id"].as_str().unwrap(), json!({}));
    let out = ok(
        &s,
        &restored,
        "cat /data/output.csv; python -c 'import tinypkg; print(tinypkg.VALUE)'; \
         test -e /etc/hosts && echo hosts-back; ls /etc/skel",
    );
    assert_eq!(out, vec!["a,b", "42", "new"], "deletions and replaced directories come back as they were");
    // And it is a sandbox like any other: it writes, and the image is untouched.
    ok(&s, &restored, "echo more >> /data/output.csv && touch /etc/hosts");
    let fresh = s.sandbox();
    assert_eq!(ok(&s, &fresh, "ls /etc/skel | wc -l; test -s /etc/hosts && echo ok")[1], "ok");
}

#[test]
fn an_unchanged_sandbox_snapshots_to_almost_nothing() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let snap = snapshot(&s, &sb);
    let size = snap["size_bytes"].as_u64().unwrap();
    assert!(size < 4096, "an unchanged sandbox's snapshot has {size} bytes");
    let restored = restore(&s, snap["id"].as_str().unwrap(), json!({}));
    assert_eq!(ok(&s, &restored, "test -d /data && test -s /etc/passwd && echo ok"), vec!["ok"]);
}

/// A gzip-compressed tar as the server wrote before zstd (full tree, no layer).
fn old_archive(path: &Path) {
    let file = std::fs::File::create(path).unwrap();
    let gz = flate2::write::GzEncoder::new(file, flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    let mut h = tar::Header::new_gnu();
    h.set_entry_type(tar::EntryType::Directory);
    h.set_mode(0o755);
    h.set_size(0);
    t.append_data(&mut h, "data", std::io::empty()).unwrap();
    let mut h = tar::Header::new_gnu();
    h.set_mode(0o644);
    h.set_size(9);
    t.append_data(&mut h, "data/old.csv", &b"old,data\n"[..]).unwrap();
    t.into_inner().unwrap().finish().unwrap().flush().unwrap();
}

#[test]
fn an_old_tar_gz_snapshot_still_restores() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let snap = snapshot(&s, &sb);
    let id = snap["id"].as_str().unwrap().to_string();
    let data = s.stop();
    // The archive's bytes replaced by an old-style one (the name does not matter to a restore).
    let archives: Vec<PathBuf> = std::fs::read_dir(data.join("snapshots"))
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    assert_eq!(archives.len(), 1, "{archives:?}");
    old_archive(&archives[0]);
    let s = Server::start_in(data, &[], &[]);
    let restored = restore(&s, &id, json!({}));
    let out = ok(&s, &restored, "cat /data/old.csv; test -s /etc/passwd && echo image");
    assert_eq!(out, vec!["old,data", "image"]);
}

#[test]
fn an_unknown_image_is_a_400_that_lists_the_known_ones() {
    let s = Server::start(&[]);
    for path in ["sandboxes", "sandbox-pools"] {
        let r = s.post_json(
            &format!("{P}/{path}"),
            &json!({ "image": "python:3.12", "resources": {} }),
        );
        assert_eq!(r.status, 400, "{path}: {}", r.text());
        let text = r.text();
        assert!(text.contains("python:3.12"), "{text}");
        assert!(text.contains("tensorlake/ubuntu-minimal"), "{text}");
    }
    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({ "image": "tensorlake/ubuntu-minimal" }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
}

/// The file `file` of sandbox `id`'s cgroup (v1 or v2), searched under /sys/fs/cgroup.
fn cgroup_value(id: &str, file: &str) -> Option<String> {
    let mut stack = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            let p = e.path();
            if e.file_name() == id && p.join(file).is_file() {
                return std::fs::read_to_string(p.join(file)).ok();
            }
            if depth < 6 {
                stack.push((p, depth + 1));
            }
        }
    }
    None
}

#[test]
fn a_restore_with_more_resources_gets_those_cgroup_limits_and_reports_them() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox_with(json!({ "resources": { "cpus": 1.0, "memory_mb": 512 } }));
    ok(&s, &sb, "echo a,b > /data/output.csv");
    let snap = snapshot(&s, &sb);
    let big = restore(
        &s,
        snap["id"].as_str().unwrap(),
        json!({ "cpus": 4.0, "memory_mb": 2048 }),
    );
    let info = s.get(&format!("{P}/sandboxes/{big}")).json();
    assert_eq!(info["resources"]["cpus"], 4.0, "{info}");
    assert_eq!(info["resources"]["memory_mb"], 2048, "{info}");
    let mem = cgroup_value(&big, "memory.limit_in_bytes")
        .or_else(|| cgroup_value(&big, "memory.max"))
        .expect("the restored sandbox has a memory cgroup");
    assert_eq!(mem.trim(), (2048u64 << 20).to_string());
    let cpu = cgroup_value(&big, "cpu.cfs_quota_us")
        .map(|q| q.trim().to_string())
        .or_else(|| cgroup_value(&big, "cpu.max").map(|m| m.split(' ').next().unwrap_or("").to_string()))
        .expect("the restored sandbox has a cpu cgroup");
    let period = cgroup_value(&big, "cpu.cfs_period_us")
        .map(|p| p.trim().parse::<u64>().unwrap())
        .unwrap_or(100_000);
    assert_eq!(cpu.parse::<u64>().unwrap(), 4 * period);
    assert_eq!(ok(&s, &big, "cat /data/output.csv"), vec!["a,b"]);
}

#[test]
fn a_256_mib_sandbox_cannot_hold_1_gib() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox_with(json!({ "resources": { "memory_mb": 256 } }));
    let run = s.run_body(
        &sb,
        &json!({ "command": "python", "args": ["-c", "b = b'x' * (1 << 30); print('held', len(b))"], "timeout": 120 }),
    );
    assert!(
        !run.stdout.iter().any(|l| l.starts_with("held")),
        "a 256 MiB sandbox held 1 GiB: {run:?}"
    );
    let small = s.run_body(
        &sb,
        &json!({ "command": "python", "args": ["-c", "b = b'x' * (64 << 20); print('held', len(b))"] }),
    );
    assert_eq!(small.stdout, vec![format!("held {}", 64 << 20)], "{small:?}");
}

#[test]
fn a_server_without_layers_says_so_and_still_gives_the_image_files() {
    require_root();
    let data = temp_dir("images-nobody");
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    let s = common::start_as_user(65534, data, &[]);
    let sb = s.sandbox();
    let out = ok(&s, &sb, "test -s /etc/passwd && test -d /data && test -d /home && echo ok");
    assert_eq!(out, vec!["ok"]);
    std::thread::sleep(std::time::Duration::from_millis(100));
    let err = s.stderr();
    assert!(err.contains("image: layers NOT on"), "{err}");
}
