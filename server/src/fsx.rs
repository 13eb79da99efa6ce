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

use std::ffi::CString;
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
    loop {
        // SAFETY: arguments follow openat2(2): a valid dirfd, a NUL-terminated path, a pointer to
        // an initialised open_how and its size.
        let fd = unsafe {
            libc::syscall(
                libc::SYS_openat2,
                root.as_raw_fd(),
                c.as_ptr(),
                &how as *const OpenHow,
                std::mem::size_of::<OpenHow>(),
            )
        };
        if fd >= 0 {
            // SAFETY: openat2 returned a fresh descriptor.
            return Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) });
        }
        let err = io::Error::last_os_error();
        // EAGAIN: a concurrent rename raced the lookup; the kernel asks for a retry.
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

/// Reads a symlink's target, given its parent directory.
pub fn readlink_at(dir: &OwnedFd, name: &std::ffi::OsStr) -> io::Result<PathBuf> {
    std::fs::read_link(fd_path(dir).join(name))
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
/// each step inside the root; returns the last one opened `O_PATH`.
pub fn mkdir_all_in_root(root: &OwnedFd, rel: &str) -> io::Result<OwnedFd> {
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
            }
            Err(e) => return Err(e),
        }
    }
    Ok(dir)
}

/// Removes `name` from the directory `dir`: a file or link with unlink, a directory with its
/// whole content (std's remove_dir_all never follows links).
pub fn remove_at(dir: &OwnedFd, name: &str) -> io::Result<()> {
    let path = fd_path(dir).join(name);
    let meta = std::fs::symlink_metadata(&path)?;
    if meta.is_dir() {
        std::fs::remove_dir_all(&path)
    } else {
        std::fs::remove_file(&path)
    }
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
        let d = mkdir_all_in_root(&fd, "a/b/c").unwrap();
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
