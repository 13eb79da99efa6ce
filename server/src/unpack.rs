//! Restoring a snapshot archive into a fresh sandbox root.
//!
//! An archive holds whatever a sandbox made: links where directories are expected, setuid
//! files, and (from an older or foreign writer) device nodes, FIFOs, hard links, `..` or
//! absolute names. So every entry is created relative to its parent directory's descriptor
//! (`mkdirat`, `openat(O_CREAT | O_EXCL | O_NOFOLLOW)`, `symlinkat`, `linkat`), the parents are
//! entered with `O_NOFOLLOW`, and nothing is ever resolved through a link:
//! - names with `..` or a leading `/`, top-level system directories, device nodes, FIFOs and
//!   sockets are skipped; a hard link is made only to a regular file already restored;
//! - into a sandbox's upper layer (`layered`), a character device 0/0 is an overlayfs whiteout
//!   and is made as one, a directory's `trusted.overlay.opaque` record is set (nothing else of
//!   the kind: both only hide the image's files from the sandbox itself), and `usr` is the
//!   sandbox's own layer of `/usr`;
//! - an entry whose parent is a link or a file is skipped (the link stays as it was);
//! - setuid and setgid bits are dropped, and everything is given to the root's owner;
//! - runs of zeros are not written, so sparse files (and zero-filled ones) keep their holes.
//!
//! The walk is iterative with a bounded number of descriptors (see `dirwalk`).

use std::borrow::Cow;
use std::ffi::CStr;
use std::io::{self, Read};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use tar::EntryType;

use crate::dirwalk::DirStack;
use crate::fsx::{self, Owner};
use crate::jail::SYSTEM_DIRS;
use crate::unpack_data::{decompressed, is_opaque, set_opaque, write_with_holes};


/// What a restore left out.
#[derive(Debug, Default)]
pub struct Report {
    /// Entries not restored (unsafe names, special files, entries under a link, ...).
    pub skipped: u64,
    /// The first few of them, with the reason, for the log.
    pub examples: Vec<String>,
}

/// Mode and time of a directory entered during the restore, put back when it is left (so a
/// read-only directory can be filled, and children do not change its mtime).
struct Saved {
    mode: u32,
    mtime: i64,
    chmodded: bool,
}

struct Extractor {
    stack: DirStack,
    saved: Vec<Saved>,
    /// The current directory's path below the root (components joined by `/`) and the end
    /// offset of each component in it.
    cur: Vec<u8>,
    ends: Vec<usize>,
    owner: Owner,
    report: Report,
    /// The previous entry's clean name.
    prev: Vec<u8>,
    /// Restoring into an overlay's upper layer.
    layered: bool,
}

/// Errors that end a restore, rather than skip one entry: the machine, not the archive.
fn fatal(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOSPC)
            | Some(libc::EDQUOT)
            | Some(libc::EIO)
            | Some(libc::EMFILE)
            | Some(libc::ENFILE)
            | Some(libc::ENOMEM)
            | Some(libc::EROFS)
            | Some(libc::ESTALE)
    )
}

/// An error of the archive's own bytes (not of the disk): `InvalidData`.
pub(crate) fn damaged(e: io::Error) -> io::Error {
    if e.raw_os_error().is_some() {
        e
    } else {
        io::Error::new(io::ErrorKind::InvalidData, format!("damaged archive: {e}"))
    }
}

/// Length of the common prefix of `a` and `b` (compared a block at a time: the names of a deep
/// tree are long, and every entry repeats its parent's).
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 256 <= n && a[i..i + 256] == b[i..i + 256] {
        i += 256;
    }
    while i < n && a[i] == b[i] {
        i += 1;
    }
    i
}

/// An entry name with empty and `.` components dropped (and a trailing `/`), or None when it is
/// absolute, climbs with `..`, or names the root itself. `prev` is the previous clean name: the
/// components the two share were checked already, so a deep tree costs no more per entry than
/// its last component.
fn clean_name<'a>(raw: &'a [u8], prev: &[u8]) -> Option<Cow<'a, [u8]>> {
    if raw.first() == Some(&b'/') {
        return None;
    }
    let raw = raw.strip_suffix(b"/").unwrap_or(raw);
    let shared = common_prefix(raw, prev);
    let start = raw[..shared]
        .iter()
        .rposition(|b| *b == b'/')
        .map_or(0, |i| i + 1);
    let mut clean = true;
    for comp in raw[start..].split(|b| *b == b'/') {
        if comp == b".." {
            return None;
        }
        if comp.is_empty() || comp == b"." {
            clean = false;
        }
    }
    if clean {
        return (!raw.is_empty()).then_some(Cow::Borrowed(raw));
    }
    let comps: Vec<&[u8]> = raw
        .split(|b| *b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    if comps.is_empty() || comps.iter().any(|c| *c == b"..") {
        return None;
    }
    Some(Cow::Owned(comps.join(&b'/')))
}

/// Unpacks the tar `archive` (zstd or gzip) into the directory `root` (a fresh root, or a
/// sandbox's fresh upper layer when `layered`, that nobody else writes to yet), as described in
/// the module documentation.
pub fn extract(archive: &Path, root: &OwnedFd, layered: bool) -> io::Result<Report> {
    let mut ar = tar::Archive::new(decompressed(archive)?);
    let mut x = Extractor {
        stack: DirStack::new(root.try_clone()?),
        saved: Vec::new(),
        cur: Vec::new(),
        ends: Vec::new(),
        owner: Owner::of(root)?,
        report: Report::default(),
        prev: Vec::new(),
        layered,
    };
    for entry in ar.entries().map_err(damaged)? {
        let mut entry = entry.map_err(damaged)?;
        x.entry(&mut entry)?;
    }
    x.pop_to(0)?;
    Ok(x.report)
}

impl Extractor {
    fn skip(&mut self, name: &[u8], why: &str) {
        self.report.skipped += 1;
        if self.report.examples.len() < 5 {
            let shown: String = String::from_utf8_lossy(&name[..name.len().min(200)]).into();
            self.report.examples.push(format!("{shown}: {why}"));
        }
    }

    /// Leaves directories until `depth` levels remain, putting back their mode and mtime.
    fn pop_to(&mut self, depth: usize) -> io::Result<()> {
        while self.stack.depth() > depth {
            let cur = self.stack.current()?;
            if let Some(s) = self.saved.pop() {
                if s.chmodded {
                    let _ = fsx::chmod_dir(cur, s.mode);
                }
                let _ = fsx::set_mtime_fd(cur, s.mtime);
            }
            self.stack.pop();
            self.cur
                .truncate(self.ends.len().checked_sub(2).map_or(0, |i| self.ends[i]));
            self.ends.pop();
        }
        Ok(())
    }

    /// Enters (creating it if missing) the directory `name` of the current one. Returns false
    /// when something other than a directory is in the way.
    fn enter(&mut self, name: &[u8]) -> io::Result<bool> {
        let c = fsx::cstr(name)?;
        let cur = self.stack.current()?;
        let (fd, st) = match fsx::open_dir_at(cur, &c) {
            Ok(x) => x,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => {
                fsx::mkdir_at(cur, &c, 0o700)?;
                let (fd, st) = fsx::open_dir_at(cur, &c)?;
                let _ = self.owner.give_fd(&fd);
                fsx::chmod_dir(&fd, 0o755)?;
                (fd, st)
            }
            Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => return Ok(false),
            Err(e) => return Err(e),
        };
        let mode = st.st_mode & 0o7777;
        let chmodded = mode & 0o700 != 0o700;
        if chmodded {
            fsx::chmod_dir(&fd, mode | 0o700)?;
        }
        self.saved.push(Saved {
            mode,
            mtime: st.st_mtime,
            chmodded,
        });
        self.stack.push(c, fd, &st);
        if !self.cur.is_empty() {
            self.cur.push(b'/');
        }
        self.cur.extend_from_slice(name);
        self.ends.push(self.cur.len());
        Ok(true)
    }

    /// Makes the current directory the one at `parent` (components joined by `/`): leaves down
    /// to the part shared with the current path, then enters the rest. False when the way is
    /// blocked by a link or a file.
    fn go_to(&mut self, parent: &[u8]) -> io::Result<bool> {
        let below_cur = parent.len() > self.cur.len()
            && parent.starts_with(&self.cur)
            && (self.cur.is_empty() || parent[self.cur.len()] == b'/');
        if parent != self.cur.as_slice() && !below_cur {
            let common = common_prefix(parent, &self.cur);
            let mut keep = self.ends.partition_point(|&e| e <= common);
            if keep > 0 {
                let end = self.ends[keep - 1];
                if end != parent.len() && parent.get(end) != Some(&b'/') {
                    keep -= 1;
                }
            }
            self.pop_to(keep)?;
        }
        if parent != self.cur.as_slice() {
            let start = if self.cur.is_empty() {
                0
            } else {
                self.cur.len() + 1
            };
            let rest = parent.get(start..).unwrap_or(&[]);
            for comp in rest.split(|b| *b == b'/').filter(|c| !c.is_empty()) {
                if !self.enter(comp)? {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    fn entry<R: Read>(&mut self, entry: &mut tar::Entry<'_, R>) -> io::Result<()> {
        let raw = entry.path_bytes().into_owned();
        let Some(clean) = clean_name(&raw, &self.prev) else {
            self.skip(&raw, "absolute name, `..`, or the root itself");
            return Ok(());
        };
        self.prev.clear();
        self.prev.extend_from_slice(&clean);
        let (parent, name) = match clean.iter().rposition(|b| *b == b'/') {
            Some(i) => (&clean[..i], &clean[i + 1..]),
            None => (&clean[..0], &clean[..]),
        };
        let first = clean.split(|b| *b == b'/').next().unwrap_or(&[]);
        if SYSTEM_DIRS.iter().any(|s| s.as_bytes() == first) && !(self.layered && first == b"usr")
        {
            self.skip(&raw, "the jail mounts the host's directory there");
            return Ok(());
        }
        let kind = entry.header().entry_type();
        let mode = entry.header().mode().unwrap_or(0o644) & 0o1777;
        let mtime = entry.header().mtime().unwrap_or(0).min(i64::MAX as u64) as i64;
        let whiteout = kind == EntryType::Char
            && entry.header().device_major().ok().flatten() == Some(0)
            && entry.header().device_minor().ok().flatten() == Some(0);
        let opaque = self.layered && kind == EntryType::Directory && is_opaque(entry);
        let result = (|| -> io::Result<Option<&'static str>> {
            if !self.go_to(parent)? {
                return Ok(Some(
                    "a link or a file stands where a directory is expected",
                ));
            }
            let c = fsx::cstr(name)?;
            match kind {
                EntryType::Directory => {
                    let r = self.dir(&c, mode, mtime)?;
                    if opaque && r.is_none() {
                        self.mark_opaque(&c)?;
                    }
                    Ok(r)
                }
                EntryType::Char if whiteout && self.layered => self.whiteout(&c),
                EntryType::Regular | EntryType::Continuous | EntryType::GNUSparse => {
                    self.file(&c, mode, mtime, entry)
                }
                EntryType::Symlink => {
                    let target = entry.link_name_bytes().map(|t| t.into_owned());
                    match target {
                        Some(t) if !t.is_empty() => self.symlink(&c, &t, mtime),
                        _ => Ok(Some("a link without a target")),
                    }
                }
                EntryType::Link => {
                    let target = entry.link_name_bytes().map(|t| t.into_owned());
                    self.hard_link(&c, target.as_deref().unwrap_or(&[]))
                }
                _ => Ok(Some("device nodes, FIFOs and sockets are not restored")),
            }
        })();
        match result {
            Ok(None) => Ok(()),
            Ok(Some(why)) => {
                self.skip(&raw, why);
                Ok(())
            }
            Err(e) if fatal(&e) || e.kind() == io::ErrorKind::InvalidData => Err(e),
            Err(e) => {
                self.skip(&raw, &e.to_string());
                Ok(())
            }
        }
    }

    /// Frees `name` in the current directory for a new non-directory entry (a later entry wins
    /// over an earlier one, as with tar); false when a directory is there.
    fn make_room(&mut self, name: &CStr) -> io::Result<bool> {
        let cur = self.stack.current()?;
        match fsx::stat_at(cur, name) {
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(true),
            Err(e) => Err(e),
            Ok(st) if fsx::is_type(&st, libc::S_IFDIR) => Ok(false),
            Ok(_) => fsx::unlink_at(cur, name, 0).map(|_| true),
        }
    }

    fn dir(&mut self, name: &CStr, mode: u32, mtime: i64) -> io::Result<Option<&'static str>> {
        let cur = self.stack.current()?;
        match fsx::mkdir_at(cur, name, 0o700) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {
                if !self.make_room(name)? {
                    // Already a directory: just take the archived mode and time below.
                } else {
                    let cur = self.stack.current()?;
                    fsx::mkdir_at(cur, name, 0o700)?;
                }
            }
            Err(e) => return Err(e),
        }
        let cur = self.stack.current()?;
        let (fd, _) = fsx::open_dir_at(cur, name)?;
        let _ = self.owner.give_fd(&fd);
        fsx::chmod_dir(&fd, mode)?;
        let _ = fsx::set_mtime_fd(&fd, mtime);
        Ok(None)
    }

    fn file<R: Read>(
        &mut self,
        name: &CStr,
        mode: u32,
        mtime: i64,
        data: &mut R,
    ) -> io::Result<Option<&'static str>> {
        if !self.make_room(name)? {
            return Ok(Some("a directory is already there"));
        }
        let file = fsx::create_file_at(self.stack.current()?, name)?;
        let len = write_with_holes(&file, data)?;
        file.set_len(len)?;
        let _ = self.owner.give_fd(&file);
        // After the chown, which would clear the bits anyway: mode already lost setuid/setgid.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        let _ = file.set_modified(UNIX_EPOCH + Duration::from_secs(mtime.max(0) as u64));
        Ok(None)
    }

    fn symlink(
        &mut self,
        name: &CStr,
        target: &[u8],
        mtime: i64,
    ) -> io::Result<Option<&'static str>> {
        if !self.make_room(name)? {
            return Ok(Some("a directory is already there"));
        }
        let t = fsx::cstr(target)?;
        let cur = self.stack.current()?;
        fsx::symlink_at(&t, cur, name)?;
        let _ = self.owner.give_at(cur, name);
        let _ = fsx::set_mtime_at(cur, name, mtime);
        Ok(None)
    }

    /// An overlayfs whiteout: the sandbox deleted this name of the image.
    fn whiteout(&mut self, name: &CStr) -> io::Result<Option<&'static str>> {
        if !self.make_room(name)? {
            return Ok(Some("a directory is already there"));
        }
        let cur = self.stack.current()?;
        // SAFETY: valid dirfd and NUL-terminated name; mknodat never follows a link.
        if unsafe { libc::mknodat(cur.as_raw_fd(), name.as_ptr(), libc::S_IFCHR, 0) } < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(None)
    }

    /// Marks directory `name` of the current one opaque: the image's directory of that name is
    /// hidden, as when the sandbox removed it and made a new one.
    fn mark_opaque(&mut self, name: &CStr) -> io::Result<()> {
        let cur = self.stack.current()?;
        let (fd, _) = fsx::open_dir_at(cur, name)?;
        set_opaque(&fd)
    }

    /// A hard link, only to a regular file already restored in this root.
    fn hard_link(&mut self, name: &CStr, target: &[u8]) -> io::Result<Option<&'static str>> {
        let Some(clean) = clean_name(target, &[]) else {
            return Ok(Some(
                "a hard link to an absolute name, through `..`, or to nothing",
            ));
        };
        let (tparent, tname) = match clean.iter().rposition(|b| *b == b'/') {
            Some(i) => (&clean[..i], &clean[i + 1..]),
            None => (&clean[..0], &clean[..]),
        };
        let dir = if tparent.is_empty() {
            self.stack.base().try_clone()?
        } else {
            match fsx::open_beneath(self.stack.base(), tparent, libc::O_PATH | libc::O_DIRECTORY) {
                Ok(d) => d,
                Err(e) if fatal(&e) => return Err(e),
                Err(_) => return Ok(Some("a hard link whose target is not in the restored tree")),
            }
        };
        let tc = fsx::cstr(tname)?;
        match fsx::stat_at(&dir, &tc) {
            Ok(st) if fsx::is_type(&st, libc::S_IFREG) => {}
            _ => return Ok(Some("a hard link to something other than a restored file")),
        }
        if !self.make_room(name)? {
            return Ok(Some("a directory is already there"));
        }
        let cur = self.stack.current()?;
        // SAFETY: valid dirfds and NUL-terminated names; flags 0 never follows a link.
        let rc = unsafe {
            libc::linkat(
                dir.as_raw_fd(),
                tc.as_ptr(),
                cur.as_raw_fd(),
                name.as_ptr(),
                0,
            )
        };
        if rc < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(None)
    }
}

#[cfg(test)]
#[path = "unpack_tests.rs"]
mod tests;
