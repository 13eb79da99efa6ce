//! Signals for jailed commands, seen from the host.
//!
//! bubblewrap does not forward signals: a process's host-side tree is the outer `bwrap` (what the
//! server spawned), bwrap's init (pid 1 of the sandbox's PID namespace) and the command (pid 2
//! there). A signal for the command is therefore sent to the command itself, found through
//! `/proc/<pid>/task/<pid>/children`; the server may signal it (root, or the same uid when run as
//! a normal user). When the command ends, bwrap's init ends the namespace and bwrap exits with
//! `128 + signal`, which `procs` maps back to the signal the server delivered.
//!
//! A kill must not lose a jail that is still starting (bwrap arms its parent-death signal a moment
//! after forking): [`kill_jail`] first stops the outer bwrap, so it cannot fork any more, then
//! kills every descendant it found, then bwrap itself.

use std::time::{Duration, Instant};

/// Children of `pid` (host pids), read from procfs; empty when it is gone.
fn children(pid: i32) -> Vec<i32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|s| s.parse().ok())
        .collect()
}

/// Every descendant of `pid`, parents before children.
pub fn descendants(pid: i32) -> Vec<i32> {
    let mut out = Vec::new();
    let mut queue = vec![pid];
    // Bounded: a sandbox's pids cgroup caps its tree; this caps a runaway walk anyway.
    while let Some(p) = queue.pop() {
        for c in children(p) {
            if out.len() >= 65_536 {
                return out;
            }
            out.push(c);
            queue.push(c);
        }
    }
    out
}

/// The innermost PID-namespace pid of host process `pid` (the last `NSpid` field).
fn ns_pid(pid: i32) -> Option<i32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("NSpid:"))?
        .split_whitespace()
        .last()?
        .parse()
        .ok()
}

/// The host pid of the command run by the jail whose outer bwrap is `bwrap_pid`: the child of
/// the namespace's init that is pid 2 there (the first one forked), once it exists.
pub fn command_pid(bwrap_pid: i32) -> Option<i32> {
    let init = children(bwrap_pid)
        .into_iter()
        .find(|p| ns_pid(*p) == Some(1))?;
    let kids = children(init);
    kids.iter()
        .copied()
        .find(|p| ns_pid(*p) == Some(2))
        .or_else(|| kids.into_iter().min())
}

/// Waits (up to `limit`) for the command of `bwrap_pid` to exist.
pub fn wait_for_command(bwrap_pid: i32, limit: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(p) = command_pid(bwrap_pid) {
            return Some(p);
        }
        if start.elapsed() >= limit || !alive(bwrap_pid) {
            return None;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Whether `pid` still exists (a zombie counts: it is the server's to reap).
fn alive(pid: i32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Process state letter of `pid` (`R`, `S`, `T`, `Z`, ...).
fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: the state follows the last ')'.
    stat.rsplit_once(')')?.1.trim_start().chars().next()
}

/// Sends `sig` to `pid`; false when it is gone.
pub fn send(pid: i32, sig: i32) -> bool {
    // SAFETY: kill(2) on a pid of this server's own jail tree; at worst it is already gone.
    unsafe { libc::kill(pid, sig) == 0 }
}

/// Kills the jail whose outer bwrap is `bwrap_pid` and everything in it, even while it is still
/// starting. Blocking, a few milliseconds.
pub fn kill_jail(bwrap_pid: i32) {
    if !send(bwrap_pid, libc::SIGSTOP) {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < Duration::from_millis(50) {
        match state(bwrap_pid) {
            Some('T') | Some('t') | Some('Z') | None => break,
            _ => std::thread::sleep(Duration::from_millis(1)),
        }
    }
    for p in descendants(bwrap_pid) {
        send(p, libc::SIGKILL);
    }
    send(bwrap_pid, libc::SIGKILL);
}

/// Stops (`SIGSTOP`) or continues (`SIGCONT`) the whole tree of a jail: the suspend fallback
/// where no cgroup freezer is available.
pub fn stop_tree(bwrap_pid: i32, stop: bool) {
    let sig = if stop { libc::SIGSTOP } else { libc::SIGCONT };
    send(bwrap_pid, sig);
    for p in descendants(bwrap_pid) {
        send(p, sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_and_kills_a_grandchild_tree() {
        let mut child = std::process::Command::new("sh")
            .args(["-c", "sleep 30 & sleep 30; wait"])
            .spawn()
            .unwrap();
        let pid = child.id() as i32;
        let start = Instant::now();
        while descendants(pid).len() < 2 && start.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(10));
        }
        let tree = descendants(pid);
        assert_eq!(tree.len(), 2, "{tree:?}");
        kill_jail(pid);
        let status = child.wait().unwrap();
        assert!(!status.success());
        for p in tree {
            let start = Instant::now();
            while alive(p) && state(p) != Some('Z') && start.elapsed() < Duration::from_secs(5) {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(!alive(p) || state(p) == Some('Z'), "{p} survived");
        }
    }

    #[test]
    fn the_state_letter_follows_the_last_parenthesis() {
        assert!(matches!(
            state(std::process::id() as i32),
            Some('R') | Some('S')
        ));
        assert_eq!(command_pid(i32::MAX), None);
    }
}
