//! Starting and stopping a sandbox's slirp4netns (see `netns`): the process, its descriptors
//! (namespace, exit pipe, readiness pipe) and the confinement it starts in.

use std::ffi::CString;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long slirp4netns may take to configure a namespace.
const READY_TIMEOUT: Duration = Duration::from_secs(10);

/// A running slirp4netns.
pub struct Slirp {
    /// The process.
    pub child: Child,
    /// Closing it tells slirp4netns to exit.
    _exit: OwnedFd,
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors we then own.
    unsafe {
        if libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok((OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])))
    }
}

/// Starts slirp4netns on `ns` and waits until it has configured it.
///
/// slirp4netns's own sandbox keeps euid 0 (with no capability but CAP_NET_BIND_SERVICE) and binds
/// the host's `/etc` and `/run` into its empty root. So it is started in a mount namespace of its
/// own where `/run` is an empty tmpfs (no root-owned sockets) and `/etc` is `etc`, a directory
/// holding only a copy of the host's resolv.conf (no `shadow`, no keys), which its DNS
/// forwarder reads.
pub fn start_slirp(
    slirp: &Path,
    ns: RawFd,
    etc: &Path,
    cgroups: &[CString],
    filter: &[seccompiler::sock_filter],
) -> io::Result<Slirp> {
    let filter = filter.to_vec();
    refresh_etc(etc)?;
    let etc_c =
        std::ffi::CString::new(etc.as_os_str().as_encoded_bytes()).map_err(io::Error::other)?;
    let (exit_r, exit_w) = pipe()?;
    let (ready_r, ready_w) = pipe()?;
    let mut cmd = Command::new(slirp);
    cmd.args([
        "--configure",
        "--mtu=65520",
        "--disable-host-loopback",
        "--enable-sandbox",
        "--enable-seccomp",
        "--exit-fd=4",
        "--ready-fd=5",
        "--netns-type=path",
        "/proc/self/fd/3",
        "tap0",
    ])
    .env_clear()
    .stdin(Stdio::null())
    .stdout(Stdio::null())
    .stderr(Stdio::null())
    .current_dir("/");
    let sources = [ns, exit_r.as_raw_fd(), ready_w.as_raw_fd()];
    let cgroups = cgroups.to_vec();
    // SAFETY: open, write, close, fcntl, dup2, unshare and mount are async-signal-safe, on data
    // prepared before the fork. Each source is first copied above 9 so that
    // no dup2 overwrites a source not yet moved; dup2 clears close-on-exec on 3, 4 and 5.
    unsafe {
        cmd.pre_exec(move || {
            crate::conn_limit::restore_in_child();
            // Its memory, CPU and pids count as the sandbox's.
            super::child::join_cgroups(&cgroups)?;
            let mut high = [0; 3];
            for (i, fd) in sources.iter().enumerate() {
                high[i] = libc::fcntl(*fd, libc::F_DUPFD_CLOEXEC, 10);
                if high[i] < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            for (i, fd) in high.iter().enumerate() {
                if libc::dup2(*fd, 3 + i as i32) < 0 {
                    return Err(io::Error::last_os_error());
                }
            }
            let none = std::ptr::null::<libc::c_char>();
            let bind_ro = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    none,
                    c"/".as_ptr(),
                    none,
                    libc::MS_REC | libc::MS_PRIVATE,
                    std::ptr::null(),
                ) != 0
                || libc::mount(
                    c"tmpfs".as_ptr(),
                    c"/run".as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    c"size=64k,mode=755".as_ptr().cast(),
                ) != 0
                || libc::mount(
                    etc_c.as_ptr(),
                    c"/etc".as_ptr(),
                    none,
                    libc::MS_BIND,
                    std::ptr::null(),
                ) != 0
                || libc::mount(none, c"/etc".as_ptr(), none, bind_ro, std::ptr::null()) != 0
            {
                return Err(io::Error::last_os_error());
            }
            // Last, so nothing above is filtered; root needs no no_new_privs for it.
            let prog = libc::sock_fprog {
                len: filter.len() as u16,
                filter: filter.as_ptr() as *mut libc::sock_filter,
            };
            if libc::prctl(libc::PR_SET_SECCOMP, libc::SECCOMP_MODE_FILTER, &prog) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn()?;
    drop(exit_r);
    drop(ready_w);
    match wait_ready(ready_r) {
        Ok(()) => Ok(Slirp {
            child,
            _exit: exit_w,
        }),
        Err(e) => {
            let _ = child.kill();
            let status = child.wait().map(|s| s.to_string()).unwrap_or_default();
            Err(io::Error::other(format!(
                "slirp4netns did not set up the sandbox's network ({e}; {status})"
            )))
        }
    }
}

/// Writes `etc/resolv.conf`, a copy of the host's (links followed), atomically.
fn refresh_etc(etc: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(etc)?;
    std::fs::set_permissions(etc, std::fs::Permissions::from_mode(0o755))?;
    let text = std::fs::read("/etc/resolv.conf").unwrap_or_default();
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let tmp = etc.join(format!(".resolv.conf.{n}"));
    std::fs::write(&tmp, text)?;
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    std::fs::rename(&tmp, etc.join("resolv.conf"))
}

fn wait_ready(ready: OwnedFd) -> io::Result<()> {
    let mut pfd = libc::pollfd {
        fd: ready.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one descriptor we own.
    let n = unsafe { libc::poll(&mut pfd, 1, READY_TIMEOUT.as_millis() as i32) };
    if n <= 0 {
        return Err(io::Error::other("no answer"));
    }
    let mut byte = [0u8; 1];
    let mut f = std::fs::File::from(ready);
    match f.read(&mut byte) {
        Ok(1) if byte[0] == b'1' => Ok(()),
        _ => Err(io::Error::other("it exited")),
    }
}

/// Kills and reaps it.
pub fn stop(s: Slirp) {
    drop(s);
}

impl Drop for Slirp {
    /// However a slirp4netns is let go of (stopped, replaced, or its sandbox released while a
    /// command was starting it), it is killed and reaped, never left as a zombie.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
