//! Isolation beyond namespaces: sandboxes never run as host root, cannot touch host kernel
//! settings or dangerous syscalls, and cannot take more than their memory, CPU, pids and disk.
//! Run as root (as CI does): the tests that need root fail loudly otherwise, rather than skip.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{eventually, temp_dir, Server};
use serde_json::{json, Value};

const P: &str = "/v1/namespaces/default";

fn require_root() {
    // SAFETY: geteuid cannot fail.
    let euid = unsafe { libc::geteuid() };
    assert_eq!(
        euid, 0,
        "this test needs root (CI runs the suite as root); it checks what a root server does"
    );
}

fn create(s: &Server, resources: Value) -> String {
    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({ "resources": resources }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()["sandbox_id"].as_str().unwrap().to_string()
}

fn root_of(s: &Server, id: &str) -> PathBuf {
    s.data.join("sandboxes").join(id).join("root")
}

fn sh_timeout(s: &Server, sb: &str, script: &str, secs: u64) -> common::Run {
    s.run_body(
        sb,
        &json!({ "command": "sh", "args": ["-c", script], "timeout": secs }),
    )
}

/// The server answers lifecycle requests and another sandbox still runs commands.
fn still_answers(s: &Server) {
    assert_eq!(s.get(&format!("{P}/sandboxes")).status, 200);
    let other = s.sandbox();
    let run = s.sh(&other, "echo alive");
    assert_eq!(run.stdout, vec!["alive"], "{run:?}");
}

/// The directory of sandbox `id`'s cgroup holding `file` (v1 or v2), searched under
/// /sys/fs/cgroup.
fn cgroup_file(id: &str, file: &str) -> Option<PathBuf> {
    let mut stack = vec![(PathBuf::from("/sys/fs/cgroup"), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in entries.flatten() {
            let p = e.path();
            if !e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            if e.file_name() == id && p.join(file).is_file() {
                return Some(p.join(file));
            }
            if depth < 6 {
                stack.push((p, depth + 1));
            }
        }
    }
    None
}

fn uid_map_target(run: &common::Run) -> u32 {
    let line = run
        .stdout
        .iter()
        .find(|l| l.split_whitespace().next() == Some("0"))
        .unwrap_or_else(|| panic!("no uid_map line for 0: {run:?}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn sandbox_files_belong_to_an_unprivileged_uid_of_their_own() {
    require_root();
    // A private data directory (0700, as the server will make it): the sandbox uid cannot
    // search it, yet its jails must start.
    let data = temp_dir("private");
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o700)).unwrap();
    let s = Server::start_in(data, &[], &[]);
    let a = s.sandbox();
    let b = s.sandbox();
    let mut uids = Vec::new();
    for sb in [&a, &b] {
        let run = s.sh(sb, "touch /owned && cat /proc/self/uid_map");
        assert_eq!(run.code(), 0, "{run:?}");
        let mapped = uid_map_target(&run);
        let meta = std::fs::metadata(root_of(&s, sb).join("owned")).unwrap();
        assert_ne!(meta.uid(), 0, "a sandbox file is owned by host root");
        assert_ne!(meta.gid(), 0, "a sandbox file belongs to host group root");
        assert_eq!(meta.uid(), mapped, "uid 0 inside is not the file's owner");
        uids.push(mapped);
    }
    assert_ne!(uids[0], uids[1], "two sandboxes share a host uid");
}

#[test]
fn host_kernel_settings_are_read_only_inside() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let before = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    // The value written is the host's own, so even a jail that lets it through changes nothing.
    let same = before.trim_end().replace('\'', "");
    let run = s.sh(
        &sb,
        &format!(
            "printf '%s\\n' '{same}' > /proc/sys/kernel/core_pattern; echo core=$?; \
             true > /proc/sysrq-trigger; echo sysrq=$?"
        ),
    );
    assert!(
        run.stdout
            .iter()
            .any(|l| l.starts_with("core=") && l != "core=0"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .iter()
            .any(|l| l.starts_with("sysrq=") && l != "sysrq=0"),
        "{run:?}"
    );
    let after = std::fs::read_to_string("/proc/sys/kernel/core_pattern").unwrap();
    assert_eq!(before, after);
}

#[test]
fn seccomp_refuses_dangerous_syscalls_and_keeps_normal_ones() {
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let run = s.sh(&sb, "unshare -U true; echo rc=$?");
    assert!(
        run.stdout
            .iter()
            .any(|l| l.starts_with("rc=") && l != "rc=0"),
        "a new user namespace was allowed: {run:?}"
    );
    // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 1), bpf with a bad command, and
    // perf_event_open(NULL): without the filter they succeed or fail with other errors.
    let script = format!(
        "import ctypes\n\
         libc = ctypes.CDLL(None, use_errno=True)\n\
         for name, nr, args in [('keyctl', {k}, (0, -3, 1)), ('bpf', {b}, (9999, 0, 0)), ('perf_event_open', {p}, (0, 0, -1, -1, 0))]:\n\
         \x20   ctypes.set_errno(0)\n\
         \x20   rc = libc.syscall(nr, *args)\n\
         \x20   print(name, rc, ctypes.get_errno())\n",
        k = libc::SYS_keyctl,
        b = libc::SYS_bpf,
        p = libc::SYS_perf_event_open
    );
    let run = s.run(&sb, "python3", &["-c", &script]);
    assert_eq!(run.code(), 0, "{run:?}");
    for name in ["keyctl", "bpf", "perf_event_open"] {
        let want = format!("{name} -1 {}", libc::EPERM);
        assert!(
            run.stdout.contains(&want),
            "{name} not refused with EPERM: {run:?}"
        );
    }
    // Ordinary programs, threads (clone3 falls back to clone) and pip still work.
    let run = s.sh(
        &sb,
        "echo ok && python3 -c 'import threading; t = threading.Thread(target=print, args=(\"thread\",)); t.start(); t.join()' \
         && (python3 -m pip --version >/dev/null && echo pip || echo nopip)",
    );
    assert_eq!(run.code(), 0, "{run:?}");
    assert!(
        run.stdout
            .starts_with(&["ok".to_string(), "thread".to_string()]),
        "{run:?}"
    );
}

#[test]
fn setuid_files_made_inside_are_never_setuid_root_on_the_host() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let run = s.sh(
        &sb,
        "cp /usr/bin/id /tmp/x && chmod 4755 /tmp/x && ls -l /tmp/x",
    );
    assert_eq!(run.code(), 0, "{run:?}");
    let meta = std::fs::metadata(root_of(&s, &sb).join("tmp/x")).unwrap();
    assert_ne!(
        meta.uid(),
        0,
        "a setuid file owned by host root: {:o}",
        meta.mode()
    );
}

#[test]
fn memory_limit_is_enforced_and_a_restore_can_raise_it() {
    require_root();
    let s = Server::start(&[]);
    let small = create(&s, json!({ "memory_mb": 64 }));
    let alloc = "python3 -c 'b = bytearray(256 << 20); print(\"allocated\", len(b))'";
    let run = sh_timeout(&s, &small, alloc, 60);
    assert!(
        !run.stdout.iter().any(|l| l.starts_with("allocated")),
        "64 MiB sandbox allocated 256 MiB: {run:?}"
    );
    still_answers(&s);
    let snap = s.snapshot(&small);
    s.wait_snapshot(&snap, &["local_ready", "completed"]);
    let r = s.post_json(
        &format!("{P}/sandboxes"),
        &json!({ "snapshot_id": snap, "resources": { "memory_mb": 1024 } }),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let big = r.json()["sandbox_id"].as_str().unwrap().to_string();
    let run = sh_timeout(&s, &big, alloc, 60);
    assert!(
        run.stdout.iter().any(|l| l.starts_with("allocated")),
        "restored with 1024 MiB yet cannot allocate 256 MiB: {run:?}"
    );
}

#[test]
fn a_pids_limit_contains_a_fork_bomb() {
    require_root();
    let s = Server::start(&["--max-pids-per-sandbox", "64"]);
    let sb = s.sandbox();
    // Bounded first: 200 children asked for, of which at most 64 tasks may exist.
    let script = "import os, signal\n\
                  pids = []\n\
                  for _ in range(200):\n\
                  \x20   try:\n\
                  \x20       pid = os.fork()\n\
                  \x20   except OSError:\n\
                  \x20       break\n\
                  \x20   if pid == 0:\n\
                  \x20       signal.pause()\n\
                  \x20       os._exit(0)\n\
                  \x20   pids.append(pid)\n\
                  print(len(pids))\n\
                  for p in pids:\n\
                  \x20   os.kill(p, signal.SIGKILL)\n";
    let run = s.run_body(
        &sb,
        &json!({ "command": "python3", "args": ["-c", script], "timeout": 60 }),
    );
    let count: usize = run
        .stdout
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("no count: {run:?}"));
    assert!(count <= 64, "{count} processes in a sandbox limited to 64");
    let run = sh_timeout(&s, &sb, "f() { f | f & }; f; sleep 3", 5);
    assert!(run.exit.is_object(), "{run:?}");
    still_answers(&s);
    assert_eq!(s.sh(&sb, "echo again").stdout, vec!["again"]);
}

#[test]
fn disk_limit_is_enforced_and_a_full_sandbox_harms_no_one() {
    require_root();
    let s = Server::start(&[]);
    let sb = create(&s, json!({ "disk_mb": 10 }));
    let run = sh_timeout(
        &s,
        &sb,
        "dd if=/dev/zero of=/big bs=1M count=300 2>&1; ls -l /big",
        120,
    );
    let all = format!("{:?}{:?}", run.stdout, run.stderr);
    assert!(all.contains("No space left"), "{all}");
    let size = std::fs::metadata(root_of(&s, &sb).join("big"))
        .unwrap()
        .len();
    assert!(size < 20 << 20, "a 10 MiB sandbox holds a {size}-byte file");
    still_answers(&s);
    // A snapshot of the full sandbox finishes one way or the other.
    let snap = s.snapshot(&sb);
    s.wait_snapshot(&snap, &["local_ready", "completed", "failed"]);
    assert_eq!(s.sh(&sb, "rm /big && echo freed").stdout, vec!["freed"]);
}

#[test]
fn cpus_become_a_cfs_quota() {
    require_root();
    let s = Server::start(&[]);
    let sb = create(&s, json!({ "cpus": 2.0 }));
    let (quota, period) = if let Some(f) = cgroup_file(&sb, "cpu.max") {
        let v = std::fs::read_to_string(f).unwrap();
        let mut it = v.split_whitespace();
        (
            it.next().unwrap().parse::<f64>().unwrap(),
            it.next().unwrap().parse::<f64>().unwrap(),
        )
    } else {
        let q = cgroup_file(&sb, "cpu.cfs_quota_us").expect("no cpu cgroup for the sandbox");
        let p = q.with_file_name("cpu.cfs_period_us");
        let read = |p: &Path| {
            std::fs::read_to_string(p)
                .unwrap()
                .trim()
                .parse::<f64>()
                .unwrap()
        };
        (read(&q), read(&p))
    };
    assert!((quota / period - 2.0).abs() < 0.01, "{quota}/{period}");
}

#[test]
fn a_kill_leaves_no_mount_or_cgroup_and_a_restart_restores_them() {
    require_root();
    let s = Server::start(&[]);
    let sb = create(&s, json!({ "disk_mb": 20, "memory_mb": 128 }));
    assert_eq!(s.sh(&sb, "echo kept > /kept").code(), 0);
    let root = root_of(&s, &sb);
    let mounted = |p: &Path| {
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap()
            .lines()
            .any(|l| l.split(' ').nth(4) == Some(p.to_str().unwrap()))
    };
    assert!(mounted(&root));
    let data = s.kill9();
    eventually(10, "the sandbox filesystem to be unmounted", || {
        !mounted(&root)
    });
    eventually(10, "the sandbox cgroups to be removed", || {
        cgroup_file(&sb, "cgroup.procs").is_none()
    });
    let s = Server::start_in(data, &[], &[]);
    let run = s.sh(&sb, "cat /kept; df -k / | tail -1");
    assert_eq!(
        run.stdout.first().map(String::as_str),
        Some("kept"),
        "{run:?}"
    );
    let total_kb: u64 = run.stdout[1]
        .split_whitespace()
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        total_kb < 40 * 1024,
        "the 20 MiB disk came back as {total_kb} KiB"
    );
    assert!(cgroup_file(&sb, "cgroup.procs").is_some());
}

#[test]
fn an_unprivileged_server_runs_commands_and_says_what_it_cannot_enforce() {
    require_root();
    let data = temp_dir("nobody");
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    let s = common::start_as_user(65534, data, &[]);
    let sb = s.sandbox();
    let run = s.sh(&sb, "touch /mine && echo ran");
    assert_eq!(run.stdout, vec!["ran"], "{run:?}");
    let meta = std::fs::metadata(root_of(&s, &sb).join("mine")).unwrap();
    assert_eq!(meta.uid(), 65534);
    std::thread::sleep(Duration::from_millis(100));
    let err = s.stderr();
    assert!(err.contains("disk_mb NOT enforced"), "{err}");
    assert!(err.contains("memory_mb NOT enforced"), "{err}");
    // The seccomp filter needs no privilege.
    let run = s.sh(&sb, "unshare -U true; echo rc=$?");
    assert!(
        run.stdout
            .iter()
            .any(|l| l.starts_with("rc=") && l != "rc=0"),
        "{run:?}"
    );
    assert!(
        err.contains("uid mapping: sandboxes run as this server's user"),
        "{err}"
    );
}

#[test]
fn a_sandbox_from_before_uid_mapping_is_handed_to_a_uid_of_its_own() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let data = s.stop();
    // What an older server left: a plain directory whose files host root owns.
    let dir = data.join("sandboxes").join(&sb);
    let _ = std::fs::remove_file(dir.join("disk.img"));
    let root = dir.join("root");
    std::fs::write(root.join("old.txt"), "old\n").unwrap();
    std::os::unix::fs::chown(&root, Some(0), Some(0)).unwrap();
    std::os::unix::fs::chown(root.join("old.txt"), Some(0), Some(0)).unwrap();
    let s = Server::start_in(data, &[], &[]);
    let run = s.sh(&sb, "echo more >> /old.txt && cat /old.txt");
    assert_eq!(run.stdout, vec!["old", "more"], "{run:?}");
    let owner = std::fs::metadata(root.join("old.txt")).unwrap().uid();
    assert_ne!(
        owner, 0,
        "an adopted sandbox's file still belongs to host root"
    );
}
