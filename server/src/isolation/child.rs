//! The child side of starting a jail: what runs between fork and the exec of bwrap (see
//! `jail.rs`). Only async-signal-safe calls, on data the parent prepared: the server is
//! multi-threaded, and the forked child may not allocate or take locks.

use std::io;
use std::os::fd::RawFd;

use super::SandboxJail;

/// Where, in the private mount namespace of a jail started by a root server, the sandbox root
/// is bound before bwrap runs: a directory sure to exist and to be searchable by anyone. (bwrap
/// itself mounts its scratch tmpfs there too, after pivoting away from this view.)
pub const STAGING: &str = "/tmp";
const STAGING_C: &std::ffi::CStr = c"/tmp";

/// Runs in the forked child, before bwrap is executed. Joining the cgroups comes first, while
/// still privileged, so nothing the sandbox starts ever runs outside them; then the sandbox's
/// network namespace (`netns`, which bwrap then keeps with `--share-net`); the uid is dropped
/// last.
pub fn enter(
    setup: &SandboxJail,
    netns: Option<RawFd>,
    stage_from: Option<&std::ffi::CStr>,
    inherit: &[RawFd],
) -> io::Result<()> {
    // SAFETY (whole function): raw async-signal-safe calls on NUL-terminated strings and
    // descriptors prepared by the parent.
    unsafe {
        crate::conn_limit::restore_in_child();
        join_cgroups(&setup.cgroup_procs)?;
        if let Some(ns) = netns {
            if libc::setns(ns, libc::CLONE_NEWNET) != 0 {
                return Err(io::Error::last_os_error());
            }
        }
        if let Some(src) = stage_from {
            // A mount namespace of this child's own (slave: nothing propagates back to the
            // host), where the root appears at STAGING.
            let none = std::ptr::null::<libc::c_char>();
            if libc::unshare(libc::CLONE_NEWNS) != 0
                || libc::mount(
                    none,
                    c"/".as_ptr(),
                    none,
                    libc::MS_REC | libc::MS_SLAVE,
                    std::ptr::null(),
                ) != 0
                || libc::mount(
                    src.as_ptr(),
                    STAGING_C.as_ptr(),
                    none,
                    libc::MS_BIND | libc::MS_REC,
                    std::ptr::null(),
                ) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
        // Descriptors the server inherited without close-on-exec (from whoever started it) must
        // not reach the sandbox. Best effort: close_range needs Linux 5.11.
        libc::syscall(
            libc::SYS_close_range,
            3u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        );
        for &fd in inherit {
            if libc::fcntl(fd, libc::F_SETFD, 0) < 0 {
                return Err(io::Error::last_os_error());
            }
        }
        libc::umask(0o022);
        if let Some((uid, gid)) = setup.ids {
            if libc::setgroups(0, std::ptr::null()) != 0
                || libc::setgid(gid) != 0
                || libc::setuid(uid) != 0
            {
                return Err(io::Error::last_os_error());
            }
        }
    }
    Ok(())
}

/// Moves the calling process into each cgroup whose `cgroup.procs` file is given. Between fork
/// and exec only: it makes async-signal-safe calls alone (open, write, close).
pub fn join_cgroups(procs_files: &[std::ffi::CString]) -> io::Result<()> {
    for procs in procs_files {
        // SAFETY: a NUL-terminated path; the descriptor is closed before returning.
        unsafe {
            let fd = libc::open(procs.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
            if fd < 0 {
                return Err(io::Error::last_os_error());
            }
            // "0" is the writing process itself.
            let n = libc::write(fd, b"0".as_ptr().cast(), 1);
            let err = io::Error::last_os_error();
            libc::close(fd);
            if n != 1 {
                return Err(err);
            }
        }
    }
    Ok(())
}
