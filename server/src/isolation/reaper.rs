//! Clean-up after the server exits, however it exits (SIGKILL included): the sandbox filesystems
//! are unmounted and the sandbox cgroups removed, so nothing the server set up on the host
//! outlives it. (They are remade at the next start.)
//!
//! The server starts a copy of its own binary in this mode with a pipe as stdin; the copy waits
//! for end-of-file, which the kernel delivers when the server is gone, then cleans up. It also
//! holds the data directory's lock (the same open file, as descriptor 3) until it is done, so a
//! new server on the same directory cannot start while the old one's mounts are being removed.

use std::io::Read;
use std::os::fd::RawFd;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};

/// First argument selecting this mode (not a user-facing flag).
const FLAG: &str = "--internal-cleanup-after-exit";

/// Runs the clean-up mode when the process was started in it; `None` otherwise.
pub fn run_if_asked() -> Option<ExitCode> {
    let mut args = std::env::args_os().skip(1);
    if args.next()? != FLAG {
        return None;
    }
    let mut sandboxes: Option<PathBuf> = None;
    let mut cgroups = Vec::new();
    while let (Some(kind), Some(value)) = (args.next(), args.next()) {
        match kind.to_str() {
            Some("mounts-under") => sandboxes = Some(value.into()),
            Some("cgroup") => cgroups.push(PathBuf::from(value)),
            _ => {}
        }
    }
    // A Ctrl-C in the terminal reaches the whole process group; this process must outlive the
    // server to do its job.
    // SAFETY: setting signal dispositions to SIG_IGN in a single-threaded process.
    unsafe {
        for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP, libc::SIGPIPE] {
            libc::signal(sig, libc::SIG_IGN);
        }
    }
    let mut sink = [0u8; 64];
    let mut stdin = std::io::stdin();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    // Mounts first: a test or a user deleting the data directory waits on them. The jails die
    // with the server (bwrap --die-with-parent); removing the cgroups kills any straggler.
    if let Some(dir) = sandboxes {
        super::disk::unmount_under(&dir);
    }
    for cg in &cgroups {
        super::cgroups::remove_tree(cg);
    }
    Some(ExitCode::SUCCESS)
}

/// Starts the clean-up process for `sandboxes` (mounts under it) and `cgroups` (parents to
/// remove), handing it the lock descriptor. The returned pipe must stay open for the server's
/// whole life: dropping it starts the clean-up.
pub fn spawn(
    sandboxes: Option<&std::path::Path>,
    cgroups: &[PathBuf],
    lock_fd: RawFd,
) -> std::io::Result<std::process::ChildStdin> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    let mut cmd = Command::new(exe);
    cmd.arg(FLAG);
    if let Some(s) = sandboxes {
        cmd.arg("mounts-under").arg(s);
    }
    for c in cgroups {
        cmd.arg("cgroup").arg(c);
    }
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .current_dir("/");
    // SAFETY: only dup2 and fcntl, which are async-signal-safe, run between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            if lock_fd != 3 && libc::dup2(lock_fd, 3) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if libc::fcntl(3, libc::F_SETFD, 0) < 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    let stdin = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("no pipe to the clean-up process"))?;
    // Reaped by nobody: it is reparented to init when the server exits. Waiting for it here
    // would block; a zombie cannot exist while the server runs since it only exits after.
    std::mem::forget(child);
    Ok(stdin)
}
