//! Writing snapshot tar entries: GNU headers with long names, and GNU sparse entries whose holes
//! cost nothing, read with `pread` so a file that changes while it is archived still yields an
//! entry of exactly the announced size.
//!
//! The tar crate's builder reads a file to its end (a growing file would overrun its header)
//! and takes the mode and owner from the disk; snapshots need neither, so entries are written
//! here with the crate's header types.

use std::fs::File;
use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::FileExt;

use tar::{EntryType, GnuExtSparseHeader, Header};

const BLOCK: u64 = 512;
/// Most data segments a sparse entry lists; past that the rest of the file is one segment.
const MAX_SEGMENTS: usize = 65_536;

/// A tar stream being written.
pub struct TarOut<W: Write> {
    w: W,
}

/// Data segments `(offset, length)` of a file, from SEEK_DATA/SEEK_HOLE.
pub type Segments = Vec<(u64, u64)>;

impl<W: Write> TarOut<W> {
    /// Starts a stream on `w`.
    pub fn new(w: W) -> Self {
        TarOut { w }
    }

    fn pad(&mut self, len: u64) -> io::Result<()> {
        let rem = len % BLOCK;
        if rem != 0 {
            self.w
                .write_all(&[0u8; BLOCK as usize][..(BLOCK - rem) as usize])?;
        }
        Ok(())
    }

    /// A GNU `././@LongLink` record carrying a name too long for the header.
    fn long(&mut self, kind: u8, data: &[u8]) -> io::Result<()> {
        let mut h = Header::new_gnu();
        let name = b"././@LongLink";
        if let Some(g) = h.as_gnu_mut() {
            g.name[..name.len()].copy_from_slice(name);
        }
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(0);
        h.set_size(data.len() as u64 + 1);
        h.set_entry_type(EntryType::new(kind));
        h.set_cksum();
        self.w.write_all(h.as_bytes())?;
        self.w.write_all(data)?;
        self.w.write_all(&[0])?;
        self.pad(data.len() as u64 + 1)
    }

    /// A header for `path` with the fields every entry shares; owner root, setuid and setgid
    /// bits dropped (a snapshot never carries them).
    fn header(
        &mut self,
        path: &[u8],
        kind: EntryType,
        mode: u32,
        mtime: i64,
    ) -> io::Result<Header> {
        let mut h = Header::new_gnu();
        if path.len() >= 100 {
            self.long(b'L', path)?;
        }
        if let Some(g) = h.as_gnu_mut() {
            let n = path.len().min(100);
            g.name[..n].copy_from_slice(&path[..n]);
        }
        h.set_mode(mode & 0o1777);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime.max(0) as u64);
        h.set_entry_type(kind);
        h.set_size(0);
        Ok(h)
    }

    /// A directory entry.
    pub fn dir(&mut self, path: &[u8], mode: u32, mtime: i64) -> io::Result<()> {
        let mut h = self.header(path, EntryType::Directory, mode, mtime)?;
        h.set_cksum();
        self.w.write_all(h.as_bytes())
    }

    /// An overlayfs whiteout (a deletion in a sandbox's layer): a character device 0/0, as
    /// overlayfs itself stores it.
    pub fn whiteout(&mut self, path: &[u8], mtime: i64) -> io::Result<()> {
        let mut h = self.header(path, EntryType::Char, 0, mtime)?;
        h.set_device_major(0)?;
        h.set_device_minor(0)?;
        h.set_cksum();
        self.w.write_all(h.as_bytes())
    }

    /// A pax extended header giving the next entry the extended attribute `key` = `value`
    /// (the `SCHILY.xattr.` records GNU tar writes): how an opaque directory is marked.
    pub fn pax_xattr(&mut self, key: &str, value: &str) -> io::Result<()> {
        let body = format!("SCHILY.xattr.{key}={value}\n");
        // The record's length counts its own digits.
        let mut len = body.len() + 2;
        while format!("{len} {body}").len() != len {
            len += 1;
        }
        let record = format!("{len} {body}");
        let mut h = Header::new_ustar();
        h.set_path("././@PaxHeader")?;
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_size(record.len() as u64);
        h.set_entry_type(EntryType::XHeader);
        h.set_cksum();
        self.w.write_all(h.as_bytes())?;
        self.w.write_all(record.as_bytes())?;
        self.pad(record.len() as u64)
    }

    /// A symbolic link entry.
    pub fn symlink(&mut self, path: &[u8], target: &[u8], mtime: i64) -> io::Result<()> {
        self.link(path, target, EntryType::Symlink, 0o777, mtime)
    }

    /// A hard link to `target`, an entry written earlier in this archive.
    pub fn hard_link(&mut self, path: &[u8], target: &[u8], mtime: i64) -> io::Result<()> {
        self.link(path, target, EntryType::Link, 0o644, mtime)
    }

    /// An entry naming `target` in its link field (a long target goes first as a `K` entry).
    fn link(&mut self, path: &[u8], target: &[u8], kind: EntryType, mode: u32, mtime: i64) -> io::Result<()> {
        if target.len() >= 100 {
            self.long(b'K', target)?;
        }
        let mut h = self.header(path, kind, mode, mtime)?;
        if let Some(g) = h.as_gnu_mut() {
            let n = target.len().min(100);
            g.linkname[..n].copy_from_slice(&target[..n]);
        }
        h.set_cksum();
        self.w.write_all(h.as_bytes())
    }

    /// A regular file of `size` bytes (its size when first seen): a sparse entry when
    /// `segments` lists its data, a plain one otherwise.
    pub fn file(
        &mut self,
        path: &[u8],
        mode: u32,
        mtime: i64,
        file: &File,
        size: u64,
        segments: Option<Segments>,
    ) -> io::Result<()> {
        let Some(segs) = segments else {
            let mut h = self.header(path, EntryType::Regular, mode, mtime)?;
            h.set_size(size);
            h.set_cksum();
            self.w.write_all(h.as_bytes())?;
            self.copy_range(file, 0, size)?;
            return self.pad(size);
        };
        let stored: u64 = segs.iter().map(|s| s.1).sum();
        let mut h = self.header(path, EntryType::GNUSparse, mode, mtime)?;
        h.set_size(stored);
        let mut rest = segs.iter();
        if let Some(g) = h.as_gnu_mut() {
            g.set_real_size(size);
            for slot in g.sparse.iter_mut() {
                match rest.next() {
                    Some(&(off, len)) => {
                        slot.set_offset(off);
                        slot.set_length(len);
                    }
                    None => break,
                }
            }
            g.set_is_extended(segs.len() > g.sparse.len());
        }
        h.set_cksum();
        self.w.write_all(h.as_bytes())?;
        let mut rest = rest.peekable();
        while rest.peek().is_some() {
            let mut ext = GnuExtSparseHeader::new();
            for slot in ext.sparse.iter_mut() {
                match rest.next() {
                    Some(&(off, len)) => {
                        slot.set_offset(off);
                        slot.set_length(len);
                    }
                    None => break,
                }
            }
            ext.set_is_extended(rest.peek().is_some());
            self.w.write_all(ext.as_bytes())?;
        }
        for &(off, len) in &segs {
            self.copy_range(file, off, len)?;
        }
        self.pad(stored)
    }

    /// Copies `len` bytes of `file` from `off`: zeros stand in for what it no longer has.
    fn copy_range(&mut self, file: &File, mut off: u64, len: u64) -> io::Result<()> {
        let mut buf = vec![0u8; 256 * 1024];
        let mut left = len;
        while left > 0 {
            let want = buf.len().min(left as usize);
            let n = match file.read_at(&mut buf[..want], off) {
                Ok(0) => {
                    buf[..want].fill(0);
                    want
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            };
            self.w.write_all(&buf[..n])?;
            off += n as u64;
            left -= n as u64;
        }
        Ok(())
    }

    /// Writes the end-of-archive blocks and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.w.write_all(&[0u8; 1024])?;
        Ok(self.w)
    }
}

/// The data segments of `file` (`size` bytes) when it has holes worth skipping; None for a
/// dense file, a file system without SEEK_HOLE, or a layout tar cannot express.
pub fn sparse_segments(file: &File, size: u64, blocks: u64) -> Option<Segments> {
    // Cheap test first: a file using as many blocks as its size has no holes.
    if size == 0 || blocks.saturating_mul(512) >= size {
        return None;
    }
    let fd = file.as_raw_fd();
    let seek = |off: u64, whence: i32| -> Option<u64> {
        // SAFETY: lseek on an open descriptor; the offset is checked below.
        let r = unsafe { libc::lseek(fd, off as libc::off_t, whence) };
        (r >= 0).then_some(r as u64)
    };
    let mut segs = Vec::new();
    let mut pos = 0u64;
    while pos < size {
        // ENXIO (no data after `pos`) ends the list: the rest is a hole.
        let Some(start) = seek(pos, libc::SEEK_DATA) else {
            break;
        };
        if start >= size {
            break;
        }
        let end = seek(start, libc::SEEK_HOLE)?.min(size);
        if end <= start || start < pos {
            return None;
        }
        if segs.len() + 1 == MAX_SEGMENTS {
            segs.push((start, size - start));
            break;
        }
        segs.push((start, end - start));
        pos = end;
    }
    // A sparse map needs every segment but the last to be whole 512-byte blocks.
    let n = segs.len();
    if segs
        .iter()
        .take(n.saturating_sub(1))
        .any(|s| s.1 % BLOCK != 0 || s.0 % BLOCK != 0)
    {
        return None;
    }
    // The map must reach the real size: a trailing hole is an empty segment at the end.
    if segs.last().is_none_or(|s| s.0 + s.1 < size) {
        segs.push((size, 0));
    }
    Some(segs)
}
