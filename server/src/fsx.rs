//! File operations inside a sandbox root that cannot be redirected out of it.
//!
//! A sandbox's processes can create any symlink in their root (`/data/x -> /etc`), and can swap a
//! directory for a link while the server is working in it. So the server never resolves a
//! sandbox path as a host path:
//! - paths from requests are resolved with `openat2(RESOLVE_IN_ROOT)`, which treats the sandbox
//!   root as `/` for `..` and for absolute link targets, exactly as the sandbox itself sees them;
//! - walks (archiving) open each entry relative to its parent's descriptor with `O_NOFOLLOW`;
//! - std path APIs are only used on `/proc/self/fd/N/<one name>`, which names the already-open
//!   directory itself, so no component can be swapped underneath.

use std::ffi::{CStr, CString};
use std::fs::File;
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `struct open_how` of openat2(2).
#[repr(C)]
struct OpenHow {
    flags: u64,
    mode: u64,
    resolve: u64,
}

const RESOLVE_NO_MAGICLINKS: u64 = 0x02;
const RESOLVE_NO_SYMLINKS: u64 = 0x04;
const RESOLVE_BENEATH: u64 = 0x08;
const RESOLVE_IN_ROOT: u64 = 0x10;

/// Opens a directory of the host (the sandbox root itself) as an `O_PATH` descriptor.
pub fn open_dir(path: &Path) -> io::Result<OwnedFd> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: `c` is a valid NUL-terminated string; the returned descriptor is owned below.
    let fd = unsafe {
        libc::open(
            c.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by open and is owned by nobody else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens `rel` (relative to `root`, which acts as `/`) with `flags`/`mode`, resolving `..` and
/// every symlink inside the root.
pub fn open_in_root(root: &OwnedFd, rel: &str, flags: i32, mode: u32) -> io::Result<OwnedFd> {
    let rel = if rel.is_empty() { "." } else { rel };
    let c = CString::new(rel).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC) as u64,
        mode: if flags & libc::O_CREAT != 0 {
            mode as u64
        } else {
            0
        },
        resolve: RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS,
    };
    openat2(root.as_raw_fd(), &c, &how)
}

/// openat2(2), retried while the kernel answers EAGAIN (a concurrent rename raced the lookup).
fn openat2(dir: RawFd, path: &CStr, how: &OpenHow) -> io::Result<OwnedFd> {
    loop {
        // SAFETY: arguments follow openat2(2): a valid dirfd, a NUL-terminated path, a pointer to
        // an initialised open_how and its size.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                dir,
                path.as_ptr(),
                how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: openat2 returned a fresh descriptor.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        let err = io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::EAGAIN) {
            return Err(err);
        }
    }
}

/// `openat(dir, name, flags | O_NOFOLLOW)`: one component, never through a link.
pub fn open_at_nofollow(dir: &OwnedFd, name: &std::ffi::OsStr, flags: i32) -> io::Result<OwnedFd> {
    let c =
        CString::new(name.as_bytes()).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: valid dirfd and NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            c.as_ptr(),
            flags | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fresh descriptor.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// The `/proc/self/fd/N` path naming an open descriptor.
pub fn fd_path(fd: &OwnedFd) -> PathBuf {
    PathBuf::from(format!("/proc/self/fd/{}", fd.as_raw_fd()))
}

/// `fstat` of an open descriptor (an `O_PATH` one included).
pub fn fstat(fd: &OwnedFd) -> io::Result<std::fs::Metadata> {
    std::fs::metadata(fd_path(fd))
}

/// A file for reading from an open descriptor.
pub fn into_file(fd: OwnedFd) -> File {
    File::from(fd)
}

/// Splits an absolute sandbox path into (parent, final name), both relative to the root.
/// `"/a/b/c"` -> `("a/b", "c")`; `"/"` -> None.
pub fn split_parent(rel: &str) -> Option<(&str, &str)> {
    let rel = rel.trim_end_matches('/');
    if rel.is_empty() {
        return None;
    }
    match rel.rfind('/') {
        Some(i) => Some((&rel[..i], &rel[i + 1..])),
        None => Some(("", rel)),
    }
}

/// Creates every directory of `rel` (relative to the root) that does not exist yet, resolving
/// each step inside the root and giving new ones to `owner`; returns the last one opened `O_PATH`.
pub fn mkdir_all_in_root(root: &OwnedFd, rel: &str, owner: &Owner) -> io::Result<OwnedFd> {
    let mut dir = open_in_root(root, ".", libc::O_PATH | libc::O_DIRECTORY, 0)?;
    let mut so_far = String::new();
    for comp in rel.split('/').filter(|c| !c.is_empty() && *c != ".") {
        if !so_far.is_empty() {
            so_far.push('/');
        }
        so_far.push_str(comp);
        match open_in_root(root, &so_far, libc::O_PATH | libc::O_DIRECTORY, 0) {
            Ok(fd) => dir = fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                let c =
                    CString::new(comp).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
                // SAFETY: valid dirfd (the previous component, opened inside the root) and name.
                let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), c.as_ptr(), 0o755) };
                if rc != 0 {
                    let err = io::Error::last_os_error();
                    if err.raw_os_error() != Some(libc::EEXIST) {
                        return Err(err);
                    }
                }
                dir = open_in_root(root, &so_far, libc::O_PATH | libc::O_DIRECTORY, 0)?;
                if rc == 0 {
                    let _ = owner.give_fd(&dir);
                }
            }
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

/// Removes `name` from the directory `dir`: a file or link with unlink, a directory with its
/// whole content, iteratively and never through a link (see [`crate::dirwalk::remove_tree`]).
/// A missing entry is `ENOENT` (the file API answers 404 for it).
pub fn remove_at(dir: &OwnedFd, name: &str) -> io::Result<()> {
    let c = cstr(name.as_bytes())?;
    stat_at(dir, &c)?;
    crate::dirwalk::remove_tree(dir, &c)
}

/// A name for a `*at` call; a NUL byte in it is refused.
pub fn cstr(name: &[u8]) -> io::Result<CString> {
    CString::new(name).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `fstatat(dir, name, AT_SYMLINK_NOFOLLOW)`: the entry itself, a link included.
pub fn stat_at(dir: &impl AsRawFd, name: &CStr) -> io::Result<libc::stat> {
    // SAFETY: zeroed `stat` is a valid out-buffer; valid dirfd and NUL-terminated name.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe {
        libc::fstatat(
            dir.as_raw_fd(),
            name.as_ptr(),
            &mut st,
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })?;
    Ok(st)
}

/// `fstat` of a descriptor (`O_PATH` ones included).
pub fn stat_fd(fd: &impl AsRawFd) -> io::Result<libc::stat> {
    // SAFETY: as in `stat_at`.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    check(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    Ok(st)
}

/// Whether a `st_mode` is of the given `S_IF*` type.
pub fn is_type(st: &libc::stat, kind: libc::mode_t) -> bool {
    st.st_mode & libc::S_IFMT == kind
}

/// Opens the directory `name` of `dir` as `O_PATH`, never through a link: a link, a file or
/// anything else that is not a directory gives `ENOTDIR`.
pub fn open_dir_at(dir: &impl AsRawFd, name: &CStr) -> io::Result<(OwnedFd, libc::stat)> {
    // SAFETY: valid dirfd and NUL-terminated name.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_PATH | libc::O_DIRECTORY | libc::O_NOFOLLOW | libc::O_CLOEXEC,
        )
    };
    if fd < 0 {
        let e = io::Error::last_os_error();
        return Err(match e.raw_os_error() {
            Some(libc::ELOOP) => io::Error::from_raw_os_error(libc::ENOTDIR),
            _ => e,
        });
    }
    // SAFETY: fresh descriptor.
    let fd = unsafe { OwnedFd::from_raw_fd(fd) };
    let st = stat_fd(&fd)?;
    if !is_type(&st, libc::S_IFDIR) {
        return Err(io::Error::from_raw_os_error(libc::ENOTDIR));
    }
    Ok((fd, st))
}

/// Opens `rel` (names separated by `/`, no `..`) below `dir` in one call, refusing every link
/// and anything that would leave `dir` (`openat2` with `RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS`).
pub fn open_beneath(dir: &impl AsRawFd, rel: &[u8], flags: i32) -> io::Result<OwnedFd> {
    let c = cstr(rel)?;
    let how = OpenHow {
        flags: (flags | libc::O_CLOEXEC | libc::O_NOFOLLOW) as u64,
        mode: 0,
        resolve: RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
    };
    openat2(dir.as_raw_fd(), &c, &how)
}

/// `mkdirat(dir, name, mode)`.
pub fn mkdir_at(dir: &impl AsRawFd, name: &CStr, mode: u32) -> io::Result<()> {
    // SAFETY: valid dirfd and NUL-terminated name.
    check(unsafe { libc::mkdirat(dir.as_raw_fd(), name.as_ptr(), mode as libc::mode_t) })
}

/// Creates the regular file `name` of `dir` for writing (mode 0600 until the caller sets its
/// own): never through a link, never over an existing entry (`EEXIST`).
pub fn create_file_at(dir: &impl AsRawFd, name: &CStr) -> io::Result<File> {
    // SAFETY: valid dirfd and NUL-terminated name; the descriptor is owned below.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            name.as_ptr(),
            libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL | libc::O_NOFOLLOW | libc::O_CLOEXEC,
            0o600,
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a fresh descriptor, owned by nothing else.
    Ok(File::from(unsafe { OwnedFd::from_raw_fd(fd) }))
}

/// `unlinkat(dir, name, flags)`; `flags` is 0 or `AT_REMOVEDIR`.
pub fn unlink_at(dir: &impl AsRawFd, name: &CStr, flags: i32) -> io::Result<()> {
    // SAFETY: valid dirfd and NUL-terminated name.
    check(unsafe { libc::unlinkat(dir.as_raw_fd(), name.as_ptr(), flags) })
}

/// `symlinkat(target, dir, name)`: creates the link; nothing is resolved.
pub fn symlink_at(target: &CStr, dir: &impl AsRawFd, name: &CStr) -> io::Result<()> {
    // SAFETY: NUL-terminated strings and a valid dirfd.
    check(unsafe { libc::symlinkat(target.as_ptr(), dir.as_raw_fd(), name.as_ptr()) })
}

/// Reads the target of the link `name` of `dir`.
pub fn readlink_at_raw(dir: &impl AsRawFd, name: &CStr) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; libc::PATH_MAX as usize + 1];
    // SAFETY: the buffer is writable for its whole length.
    let n = unsafe {
        libc::readlinkat(
            dir.as_raw_fd(),
            name.as_ptr(),
            buf.as_mut_ptr().cast(),
            buf.len(),
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    buf.truncate(n as usize);
    Ok(buf)
}

/// Who owns the files the server makes in a sandbox: the owner of the sandbox root. Another
/// owner can only be given by a privileged server; an unprivileged one skips the calls.
#[derive(Debug, Clone, Copy)]
pub struct Owner {
    uid: libc::uid_t,
    gid: libc::gid_t,
    active: bool,
}

impl Owner {
    /// The owner of the directory `root`.
    pub fn of(root: &impl AsRawFd) -> io::Result<Owner> {
        let st = stat_fd(root)?;
        // SAFETY: geteuid has no preconditions.
        let active = unsafe { libc::geteuid() } == 0;
        Ok(Owner {
            uid: st.st_uid,
            gid: st.st_gid,
            active,
        })
    }

    /// Gives the file behind `fd` (`O_PATH` allowed) to the owner.
    pub fn give_fd(&self, fd: &impl AsRawFd) -> io::Result<()> {
        if !self.active {
            return Ok(());
        }
        // SAFETY: empty path with AT_EMPTY_PATH acts on `fd` itself.
        check(unsafe {
            libc::fchownat(
                fd.as_raw_fd(),
                c"".as_ptr(),
                self.uid,
                self.gid,
                libc::AT_EMPTY_PATH,
            )
        })
    }

    /// Gives the entry `name` of `dir` to the owner, a link itself rather than its target.
    pub fn give_at(&self, dir: &impl AsRawFd, name: &CStr) -> io::Result<()> {
        if !self.active {
            return Ok(());
        }
        // SAFETY: valid dirfd and NUL-terminated name.
        check(unsafe {
            libc::fchownat(
                dir.as_raw_fd(),
                name.as_ptr(),
                self.uid,
                self.gid,
                libc::AT_SYMLINK_NOFOLLOW,
            )
        })
    }
}

/// Sets the mode of a directory opened `O_PATH` (fchmod refuses such descriptors; the
/// `/proc/self/fd` link names that very directory, so nothing can be swapped in).
pub fn chmod_dir(fd: &OwnedFd, mode: u32) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(fd_path(fd), std::fs::Permissions::from_mode(mode))
}

/// Sets the modification (and access) time of the file behind `fd` (`O_PATH` allowed).
pub fn set_mtime_fd(fd: &OwnedFd, mtime: i64) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    let c = cstr(fd_path(fd).as_os_str().as_bytes())?;
    // SAFETY: a NUL-terminated path and two initialised timespecs.
    check(unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), [ts, ts].as_ptr(), 0) })
}

/// Sets the modification time of the entry `name` of `dir` without following a link.
pub fn set_mtime_at(dir: &impl AsRawFd, name: &CStr, mtime: i64) -> io::Result<()> {
    let ts = libc::timespec {
        tv_sec: mtime as libc::time_t,
        tv_nsec: 0,
    };
    // SAFETY: valid dirfd, NUL-terminated name, two initialised timespecs.
    check(unsafe {
        libc::utimensat(
            dir.as_raw_fd(),
            name.as_ptr(),
            [ts, ts].as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// Gives a root its `/root` and a world-writable, sticky `/tmp`, creating what is missing. What
/// a restored archive put there instead (a link, a file) is left as the sandbox left it: nothing
/// is created or changed through it.
pub fn standard_dirs(root: &OwnedFd) -> io::Result<()> {
    let owner = Owner::of(root)?;
    for (name, mode, force) in [(c"root", 0o755, false), (c"tmp", 0o1777, true)] {
        match mkdir_at(root, name, 0o700) {
            Ok(()) => {
                let (fd, _) = open_dir_at(root, name)?;
                let _ = owner.give_fd(&fd);
                chmod_dir(&fd, mode)?;
            }
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => match open_dir_at(root, name) {
                Ok((fd, _)) if force => chmod_dir(&fd, mode)?,
                Ok(_) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {}
                Err(e) => return Err(e),
            },
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tempdir(tag: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("fsx-{tag}-{}", crate::model::new_id("")));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn links_and_dotdot_stay_inside_the_root() {
        let base = tempdir("links");
        let root = base.join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(base.join("secret"), b"host").unwrap();
        std::fs::write(root.join("etc/passwd"), b"inside").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("abs")).unwrap();
        std::os::unix::fs::symlink("../secret", root.join("rel")).unwrap();
        let fd = open_dir(&root).unwrap();
        let read = |p: &str| -> io::Result<String> {
            let f = open_in_root(&fd, p, libc::O_RDONLY, 0)?;
            Ok(std::io::read_to_string(into_file(f)).unwrap())
        };
        assert_eq!(read("abs").unwrap(), "inside");
        assert!(
            read("rel").is_err(),
            "../secret must resolve inside the root"
        );
        assert!(read("../secret").is_err());
        assert_eq!(read("../../etc/passwd").unwrap(), "inside");
        let d = mkdir_all_in_root(&fd, "a/b/c", &Owner::of(&fd).unwrap()).unwrap();
        assert!(fstat(&d).unwrap().is_dir());
        assert!(root.join("a/b/c").is_dir());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn split_parent_works() {
        assert_eq!(split_parent("a/b/c"), Some(("a/b", "c")));
        assert_eq!(split_parent("c"), Some(("", "c")));
        assert_eq!(split_parent(""), None);
    }
}
