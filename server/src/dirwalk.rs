//! Iterative walks of a sandbox tree: a stack of directories held with a bounded number of open
//! descriptors, and the removal of a whole tree built on it.
//!
//! A sandbox can nest directories as deep as it likes (100,000 levels is a one-line loop), so
//! nothing here recurses, and nothing keeps one descriptor per level. The stack keeps the
//! deepest [`WINDOW`] levels open, plus "anchors" every `stride` levels (the stride doubles
//! whenever there are more than [`MAX_ANCHORS`]); a level whose descriptor was dropped is
//! reopened from the nearest held one below it, by the names recorded on the way down, with
//! `openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS)`, so the reopening can never pass through a
//! link or `..`. Each reopened level must still be the directory first seen (same device and
//! inode); otherwise the walk fails with `ESTALE` rather than continue somewhere else.

use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStrExt;

use crate::fsx;

/// Deepest levels always kept open.
const WINDOW: usize = 16;
/// Held levels above the window before the anchor stride doubles.
const MAX_ANCHORS: usize = 32;
/// Longest path handed to one `openat2` when reopening (PATH_MAX is 4096).
const REOPEN_CHUNK: usize = 3800;

struct Frame {
    name: CString,
    fd: Option<OwnedFd>,
    dev: u64,
    ino: u64,
}

/// The chain of directories from a base directory down to the current one.
pub struct DirStack {
    base: OwnedFd,
    frames: Vec<Frame>,
    stride: usize,
    anchors: usize,
}

impl DirStack {
    /// A stack whose bottom (depth 0) is `base`, which is always kept open.
    pub fn new(base: OwnedFd) -> DirStack {
        DirStack {
            base,
            frames: Vec::new(),
            stride: 64,
            anchors: 0,
        }
    }

    /// Number of levels below the base.
    pub fn depth(&self) -> usize {
        self.frames.len()
    }

    /// The base directory.
    pub fn base(&self) -> &OwnedFd {
        &self.base
    }

    /// Enters `name`, a directory of the current one, already opened as `fd` (with `st` its
    /// fstat, which identifies it when it must be reopened).
    pub fn push(&mut self, name: CString, fd: OwnedFd, st: &libc::stat) {
        self.frames.push(Frame {
            name,
            fd: Some(fd),
            dev: st.st_dev,
            ino: st.st_ino,
        });
        let len = self.frames.len();
        if len <= WINDOW {
            return;
        }
        let leaving = len - WINDOW - 1;
        if (leaving + 1) % self.stride != 0 {
            self.frames[leaving].fd = None;
        } else if self.frames[leaving].fd.is_some() {
            self.anchors += 1;
            if self.anchors > MAX_ANCHORS {
                self.thin();
            }
        }
    }

    /// Doubles the anchor stride and drops the anchors that are no longer on it.
    fn thin(&mut self) {
        self.stride *= 2;
        let outside = self.frames.len().saturating_sub(WINDOW);
        let stride = self.stride;
        self.anchors = 0;
        for (i, f) in self.frames[..outside].iter_mut().enumerate() {
            if (i + 1) % stride != 0 {
                f.fd = None;
            } else if f.fd.is_some() {
                self.anchors += 1;
            }
        }
    }

    /// Leaves the current directory; returns its name in its parent.
    pub fn pop(&mut self) -> Option<CString> {
        let frame = self.frames.pop()?;
        let len = self.frames.len();
        if len >= WINDOW && self.frames[len - WINDOW].fd.is_some() {
            self.anchors = self.anchors.saturating_sub(1);
        }
        Some(frame.name)
    }

    /// The current directory, reopened if its descriptor was dropped.
    pub fn current(&mut self) -> io::Result<&OwnedFd> {
        let Some(last) = self.frames.len().checked_sub(1) else {
            return Ok(&self.base);
        };
        if self.frames[last].fd.is_none() {
            self.reopen(last)?;
        }
        match &self.frames[last].fd {
            Some(fd) => Ok(fd),
            None => Err(io::Error::from_raw_os_error(libc::ESTALE)),
        }
    }

    /// Reopens levels down to `last` from the nearest held one, keeping the window open.
    fn reopen(&mut self, last: usize) -> io::Result<()> {
        let start = self.frames[..last].iter().rposition(|f| f.fd.is_some());
        let window_from = self.frames.len().saturating_sub(WINDOW);
        let mut at = start.map_or(0, |s| s + 1);
        let mut held: Option<OwnedFd> = None;
        while at <= last {
            let parent: &OwnedFd = match (&held, at.checked_sub(1)) {
                (Some(fd), _) => fd,
                (None, None) => &self.base,
                (None, Some(p)) => self.frames[p].fd.as_ref().unwrap_or(&self.base),
            };
            // Above the window, several names go in one openat2; window levels one by one.
            let mut end = at;
            if at < window_from {
                let mut len = self.frames[at].name.as_bytes().len();
                while end + 1 < window_from.min(last + 1)
                    && len + 1 + self.frames[end + 1].name.as_bytes().len() <= REOPEN_CHUNK
                {
                    end += 1;
                    len += 1 + self.frames[end].name.as_bytes().len();
                }
            }
            let mut rel = Vec::new();
            for f in &self.frames[at..=end] {
                if !rel.is_empty() {
                    rel.push(b'/');
                }
                rel.extend_from_slice(f.name.as_bytes());
            }
            let fd = fsx::open_beneath(parent, &rel, libc::O_PATH | libc::O_DIRECTORY)?;
            let st = fsx::stat_fd(&fd)?;
            let f = &self.frames[end];
            if st.st_dev != f.dev || st.st_ino != f.ino {
                return Err(io::Error::from_raw_os_error(libc::ESTALE));
            }
            if end >= window_from {
                let dup = fd.try_clone()?;
                self.frames[end].fd = Some(dup);
            }
            held = Some(fd);
            at = end + 1;
        }
        Ok(())
    }
}

/// What a listed name costs in memory besides its bytes: the `CString`'s pointer and length,
/// the flag, and the allocator's rounding.
pub const NAME_OVERHEAD: usize = 48;

/// Lists the names in the directory `dir` (`.` and `..` left out), with whether each is a
/// directory (as the listing says; callers re-check before acting), taking each name's length
/// plus [`NAME_OVERHEAD`] from `budget`; fails with
/// `ENOMEM` as soon as that runs out, before holding more (a sandbox can put tens of millions
/// of names in one directory: links need no inode).
pub fn list_within(dir: &OwnedFd, budget: &mut usize) -> io::Result<Vec<(CString, bool)>> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(fsx::fd_path(dir))? {
        let entry = entry?;
        let name = entry.file_name();
        let cost = name.len() + NAME_OVERHEAD;
        *budget = budget
            .checked_sub(cost)
            .ok_or_else(|| io::Error::from_raw_os_error(libc::ENOMEM))?;
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        out.push((fsx::cstr(name.as_bytes())?, is_dir));
    }
    Ok(out)
}

/// Makes sure the owner may list and empty a directory about to be removed (a sandbox can
/// `chmod 000` its directories; an unprivileged server would then be stuck).
fn ensure_owner_rwx(fd: &OwnedFd, st: &libc::stat) {
    if st.st_mode & 0o700 != 0o700 {
        let _ = fsx::chmod_dir(fd, (st.st_mode & 0o7777) | 0o700);
    }
}

/// Removes the entry `name` of `parent` and, for a directory, everything under it: iteratively,
/// with a bounded number of descriptors, never following a link. A missing entry is success.
pub fn remove_tree(parent: &OwnedFd, name: &CStr) -> io::Result<()> {
    match fsx::unlink_at(parent, name, 0) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {}
        Err(e) => return Err(e),
    }
    match fsx::unlink_at(parent, name, libc::AT_REMOVEDIR) {
        Ok(()) => return Ok(()),
        Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
        Err(e) if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) => {}
        Err(e) => return Err(e),
    }
    let (top, st) = fsx::open_dir_at(parent, name)?;
    ensure_owner_rwx(&top, &st);
    let mut stack = DirStack::new(top);
    // Per level: the subdirectories still to empty and remove.
    let mut pending: Vec<Vec<CString>> = Vec::new();
    let mut relisted = 0usize;
    'list: loop {
        let cur = stack.current()?;
        let mut subdirs = Vec::new();
        // Streamed rather than listed first: only non-empty subdirectories are held, each an
        // inode, where one directory can hold tens of millions of links to a single file.
        for entry in std::fs::read_dir(fsx::fd_path(cur))? {
            let entry = entry?;
            let n = fsx::cstr(entry.file_name().as_bytes())?;
            let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
            if !is_dir {
                match fsx::unlink_at(cur, &n, 0) {
                    Ok(()) => continue,
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                    Err(e) if e.raw_os_error() == Some(libc::EISDIR) => {}
                    Err(e) => return Err(e),
                }
            }
            match fsx::unlink_at(cur, &n, libc::AT_REMOVEDIR) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                Err(e)
                    if matches!(e.raw_os_error(), Some(libc::ENOTEMPTY) | Some(libc::EEXIST)) =>
                {
                    subdirs.push(n)
                }
                Err(e) => return Err(e),
            }
        }
        pending.push(subdirs);
        loop {
            let next = pending.last_mut().and_then(|p| p.pop());
            if let Some(n) = next {
                let cur = stack.current()?;
                match fsx::open_dir_at(cur, &n) {
                    Ok((fd, st)) => {
                        ensure_owner_rwx(&fd, &st);
                        stack.push(n, fd, &st);
                        continue 'list;
                    }
                    // Replaced by a file or gone since the listing: unlink whatever is there.
                    Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => {
                        let _ = fsx::unlink_at(cur, &n, 0);
                        continue;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue,
                    Err(e) => return Err(e),
                }
            }
            pending.pop();
            let Some(child) = stack.pop() else {
                drop(stack);
                return match fsx::unlink_at(parent, name, libc::AT_REMOVEDIR) {
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(()),
                    other => other,
                };
            };
            let cur = stack.current()?;
            match fsx::unlink_at(cur, &child, libc::AT_REMOVEDIR) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {}
                // Something was created meanwhile: list that directory again (a bounded number
                // of times, so a process that keeps writing cannot hold the removal forever).
                Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) && relisted < 1000 => {
                    relisted += 1;
                    if let Some(p) = pending.last_mut() {
                        p.push(child);
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }
}

/// Removes the host path `path` and everything under it without following links below it
/// (its parent directories belong to the server and are trusted).
pub fn remove_path(path: &std::path::Path) -> io::Result<()> {
    let parent = path.parent().unwrap_or(std::path::Path::new("/"));
    let Some(name) = path.file_name() else {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    };
    let dir = fsx::open_dir(parent)?;
    remove_tree(&dir, &fsx::cstr(name.as_bytes())?)
}

/// Number of open descriptors of this process on something under `under`, for tests: counting
/// all of them raced with tests running in parallel threads.
#[cfg(test)]
fn open_fds_under(under: &std::path::Path) -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| {
            d.flatten()
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter(|target| target.starts_with(under))
                .count()
        })
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsRawFd;

    fn deep_tree(base: &std::path::Path, depth: usize) {
        // Built with *at calls: the path is far beyond PATH_MAX.
        let mut cur = fsx::open_dir(base).unwrap();
        for i in 0..depth {
            let n = fsx::cstr(b"d").unwrap();
            fsx::mkdir_at(&cur, &n, 0o755).unwrap();
            if i % 1000 == 0 {
                let f = fsx::cstr(b"f").unwrap();
                // SAFETY: valid dirfd and name.
                let fd = unsafe {
                    libc::openat(
                        cur.as_raw_fd(),
                        f.as_ptr(),
                        libc::O_CREAT | libc::O_WRONLY,
                        0o644,
                    )
                };
                assert!(fd >= 0);
                unsafe { libc::close(fd) };
            }
            cur = fsx::open_dir_at(&cur, &n).unwrap().0;
        }
    }

    #[test]
    fn removes_a_very_deep_tree_with_few_descriptors() {
        let base = std::env::temp_dir().join(format!("dirwalk-{}", crate::model::new_id("")));
        std::fs::create_dir_all(&base).unwrap();
        deep_tree(&base, 20_000);
        let before = open_fds_under(&base);
        // A small thread stack proves the walk does not recurse.
        let b2 = base.clone();
        let t = std::thread::Builder::new()
            .stack_size(64 * 1024)
            .spawn(move || remove_path(&b2.join("d")))
            .unwrap();
        t.join().unwrap().unwrap();
        assert!(!base.join("d").exists());
        // Nothing of the walk is left open (a leaked descriptor still names its deleted
        // directory under `base`).
        assert_eq!(open_fds_under(&base), before);
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn stack_reopens_dropped_levels_and_bounds_descriptors() {
        let base = std::env::temp_dir().join(format!("dirwalk-{}", crate::model::new_id("")));
        std::fs::create_dir_all(&base).unwrap();
        deep_tree(&base, 5_000);
        let mut stack = DirStack::new(fsx::open_dir(&base).unwrap());
        let n = fsx::cstr(b"d").unwrap();
        for _ in 0..5_000 {
            let (fd, st) = fsx::open_dir_at(stack.current().unwrap(), &n).unwrap();
            stack.push(n.clone(), fd, &st);
        }
        let held = stack.frames.iter().filter(|f| f.fd.is_some()).count();
        assert!(held <= WINDOW + MAX_ANCHORS, "{held} descriptors held");
        while stack.depth() > 0 {
            stack.pop();
            let st = fsx::stat_fd(stack.current().unwrap()).unwrap();
            assert!(fsx::is_type(&st, libc::S_IFDIR));
            let held = stack.frames.iter().filter(|f| f.fd.is_some()).count();
            assert!(held <= WINDOW + MAX_ANCHORS + 1, "{held} descriptors held");
        }
        drop(stack);
        remove_path(&base).unwrap();
        assert!(!base.exists());
    }

    #[test]
    fn removal_never_follows_links() {
        let base = std::env::temp_dir().join(format!("dirwalk-{}", crate::model::new_id("")));
        let outside = base.join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        std::fs::write(outside.join("keep"), b"x").unwrap();
        std::fs::create_dir_all(base.join("tree/a")).unwrap();
        std::os::unix::fs::symlink(&outside, base.join("tree/a/link")).unwrap();
        remove_path(&base.join("tree")).unwrap();
        assert!(outside.join("keep").exists());
        assert!(!base.join("tree").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }

    #[test]
    fn removal_streams_a_directory_of_many_links_while_unlinking_them() {
        // Names are unlinked as the directory is read, not listed first: every one must still go,
        // next to subdirectories that need a level of their own.
        let base = std::env::temp_dir().join(format!("dirwalk-{}", crate::model::new_id("")));
        let dir = base.join("links");
        std::fs::create_dir_all(dir.join("sub/deeper")).unwrap();
        std::fs::write(dir.join("sub/deeper/file"), b"x").unwrap();
        std::fs::write(dir.join("target"), b"x").unwrap();
        for i in 0..20_000 {
            std::fs::hard_link(dir.join("target"), dir.join(format!("link-{i:0>120}"))).unwrap();
        }
        remove_path(&dir).unwrap();
        assert!(!dir.exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
