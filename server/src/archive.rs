//! Snapshot archives: a sandbox's own files as a zstd-compressed tar, written atomically, and
//! restored into a fresh sandbox.
//!
//! With layers (see `isolation::layers`) the tree archived is the sandbox's upper layer: what it
//! changed over the image base, with deletions as overlayfs whiteouts (character devices 0/0)
//! and replaced directories marked opaque (a `trusted.overlay.opaque` extended attribute, kept as
//! a pax `SCHILY.xattr.` record). Without layers it is the whole root, less the system
//! directories the jail mounts.
//!
//! zstd at level 1 on all cores: a sandbox that wrote a gigabyte is archived at disk speed,
//! where gzip held it to one core's deflate speed (see BENCHMARKS.md). Archives written before,
//! `.tar.gz`, are still restored (`unpack` recognises both by their first bytes).
//!
//! Writing walks the tree iteratively through directory descriptors with `O_NOFOLLOW` (see
//! `dirwalk`), so a process that swaps a directory for a link mid-walk cannot make the server
//! archive host files, and no depth of nesting can exhaust a thread's stack. Files that change
//! size while being read are stored at the size first seen (cut or zero-padded) so the tar stays
//! well-formed; files with holes are stored as GNU sparse entries (the holes are not read).
//! Only regular files, directories, symlinks and whiteouts are kept; setuid and setgid bits
//! never are.
//! Restoring is `unpack`'s job.

use std::ffi::{CString, OsStr};
use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};

use crate::archive_limits::{Links, SizeBudget, NAMES_MAX};
use crate::dirwalk::{self, DirStack};
use crate::fsx;
use crate::jail::SYSTEM_DIRS;
use crate::tarwrite::{sparse_segments, TarOut};

/// What an archive holds.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Size of the archive file.
    pub size_bytes: u64,
    /// Sum of the sizes of the regular files in it.
    pub content_bytes: u64,
}

/// zstd level: the fastest; level 3 gains a few percent on text for twice the time.
const ZSTD_LEVEL: i32 = 1;

/// Environment variable that makes snapshots as this server wrote them before layers and
/// zstd (the whole root, gzip): for the side-by-side benchmark only (`bench/snapshots.sh`).
pub const LEGACY_ENV: &str = "TENSORLAKE_LOCAL_LEGACY_TAR_GZ";

/// Whether [`LEGACY_ENV`] is set.
pub fn legacy() -> bool {
    std::env::var_os(LEGACY_ENV).is_some_and(|v| v == "1")
}

/// Archives the tree at `root` into `dst`, through `tmp`: the data is written and fsynced under
/// the temporary name, renamed, and the directory fsynced, so `dst` is either absent or whole.
/// `layered`: `root` is a sandbox's upper layer, whose `usr` is the sandbox's own.
pub fn create(root: &Path, tmp: &Path, dst: &Path, layered: bool) -> io::Result<Stats> {
    let result = write_tmp(root, tmp, layered);
    let content_bytes = match result {
        Ok(n) => n,
        Err(e) => {
            let _ = std::fs::remove_file(tmp);
            return Err(e);
        }
    };
    std::fs::rename(tmp, dst)?;
    if let Some(dir) = dst.parent() {
        File::open(dir)?.sync_all()?;
    }
    let size_bytes = std::fs::metadata(dst)?.len();
    Ok(Stats {
        size_bytes,
        content_bytes,
    })
}

fn write_tmp(root: &Path, tmp: &Path, layered: bool) -> io::Result<u64> {
    let file = File::create(tmp)?;
    if legacy() {
        let gz = flate2::write::GzEncoder::new(
            BufWriter::with_capacity(256 * 1024, file),
            flate2::Compression::fast(),
        );
        let mut out = TarOut::new(gz);
        let content = walk(&mut out, open_root(root)?, false)?;
        let buf = out.finish()?.finish()?;
        buf.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        return Ok(content);
    }
    let mut zst = zstd::stream::write::Encoder::new(
        BufWriter::with_capacity(1024 * 1024, file),
        ZSTD_LEVEL,
    )?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()) as u32;
    // Worker threads compress while this one reads; with one core it stays single-threaded.
    if threads > 1 {
        zst.multithread(threads)?;
    }
    let mut out = TarOut::new(zst);
    let content = walk(&mut out, open_root(root)?, layered)?;
    let zst = out.finish()?;
    let buf = zst.finish()?;
    let file = buf.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(content)
}

fn open_root(root: &Path) -> io::Result<OwnedFd> {
    fsx::open_at_nofollow(
        &fsx::open_dir(root.parent().unwrap_or(Path::new("/")))?,
        root.file_name().unwrap_or(OsStr::new(".")),
        libc::O_PATH | libc::O_DIRECTORY,
    )
}

/// Whether an error means the entry vanished or changed kind since it was listed.
fn raced(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP) | Some(libc::ESTALE)
    )
}

/// Archives the tree below `root` depth first, iteratively (see `dirwalk`); returns the sum of
/// the regular files' sizes.
fn walk<W: Write>(out: &mut TarOut<W>, root: OwnedFd, layered: bool) -> io::Result<u64> {
    let mut content = 0u64;
    let mut budget = SizeBudget::of(&root)?;
    let mut links = Links::default();
    let mut stack = DirStack::new(root);
    // The archive path of the current directory, with a trailing `/` below the root.
    let mut prefix: Vec<u8> = Vec::new();
    let mut prefix_ends: Vec<usize> = Vec::new();
    // Per level: names still to archive, in reverse order (popped from the end), and what
    // they cost of `names_left` (given back when the level is done).
    let mut pending: Vec<Vec<CString>> = Vec::new();
    let mut pending_cost: Vec<usize> = Vec::new();
    let mut names_left = NAMES_MAX;
    'list: loop {
        let cur = stack.current()?;
        let before = names_left;
        let mut names: Vec<CString> = match dirwalk::list_within(cur, &mut names_left) {
            Ok(l) => l.into_iter().map(|(n, _)| n).collect(),
            Err(e) if raced(&e) => Vec::new(),
            Err(e) if e.raw_os_error() == Some(libc::ENOMEM) => {
                return Err(io::Error::other(format!(
                    "/{} and the directories above it hold more names than a snapshot may keep in memory ({} MiB): \
                     split such a directory into subdirectories",
                    String::from_utf8_lossy(&prefix[..prefix.len().min(200)]).trim_end_matches('/'),
                    NAMES_MAX >> 20
                )))
            }
            Err(e) => return Err(e),
        };
        pending_cost.push(before - names_left);
        if stack.depth() == 0 {
            names.retain(|n| {
                (layered && n.as_bytes() == b"usr")
                    || !SYSTEM_DIRS.iter().any(|s| s.as_bytes() == n.as_bytes())
            });
        }
        // Sorted: the same tree always gives the same archive.
        names.sort();
        names.reverse();
        pending.push(names);
        loop {
            let Some(name) = pending.last_mut().and_then(|p| p.pop()) else {
                pending.pop();
                names_left += pending_cost.pop().unwrap_or(0);
                if stack.pop().is_none() {
                    return Ok(content);
                }
                prefix.truncate(prefix_ends.pop().unwrap_or(0));
                continue;
            };
            let cur = stack.current()?;
            let st = match fsx::stat_at(cur, &name) {
                Ok(st) => st,
                // Deleted by a running process since the listing: it is simply not in the snapshot.
                Err(e) if raced(&e) => continue,
                Err(e) => return Err(e),
            };
            let mut path = prefix.clone();
            path.extend_from_slice(name.as_bytes());
            if fsx::is_type(&st, libc::S_IFDIR) {
                let (fd, st) = match fsx::open_dir_at(cur, &name) {
                    Ok(x) => x,
                    Err(e) if raced(&e) => continue,
                    Err(e) => return Err(e),
                };
                if layered && opaque(&fd) {
                    out.pax_xattr(OPAQUE_XATTR, "y")?;
                }
                out.dir(&path, st.st_mode & 0o7777, st.st_mtime)?;
                stack.push(name, fd, &st);
                prefix_ends.push(prefix.len());
                prefix = path;
                prefix.push(b'/');
                continue 'list;
            } else if fsx::is_type(&st, libc::S_IFLNK) {
                let target = match fsx::readlink_at_raw(cur, &name) {
                    Ok(t) => t,
                    Err(e) if raced(&e) || e.raw_os_error() == Some(libc::EINVAL) => continue,
                    Err(e) => return Err(e),
                };
                out.symlink(&path, &target, st.st_mtime)?;
            } else if fsx::is_type(&st, libc::S_IFREG) {
                // O_NONBLOCK: if the entry became a FIFO since the stat, opening must not hang.
                let fd = match fsx::open_at_nofollow(
                    cur,
                    OsStr::from_bytes(name.as_bytes()),
                    libc::O_RDONLY | libc::O_NONBLOCK,
                ) {
                    Ok(fd) => fd,
                    Err(e) if raced(&e) => continue,
                    Err(e) => return Err(e),
                };
                let st = fsx::stat_fd(&fd)?;
                if !fsx::is_type(&st, libc::S_IFREG) {
                    continue;
                }
                if let Some(first) = links.first(&st) {
                    out.hard_link(&path, first, st.st_mtime)?;
                    continue;
                }
                let file = File::from(fd);
                let size = st.st_size.max(0) as u64;
                budget.take(&path, size)?;
                let segments = sparse_segments(&file, size, st.st_blocks.max(0) as u64);
                content += size;
                out.file(
                    &path,
                    st.st_mode & 0o7777,
                    st.st_mtime,
                    &file,
                    size,
                    segments,
                )?;
                links.archived(&st, &path);
            } else if layered && fsx::is_type(&st, libc::S_IFCHR) && st.st_rdev == 0 {
                out.whiteout(&path, st.st_mtime)?;
            }
            // FIFOs, sockets and device nodes are not files a snapshot can carry.
        }
    }
}

/// The extended attribute overlayfs marks an opaque directory with (only root can set it).
pub const OPAQUE_XATTR: &str = "trusted.overlay.opaque";

/// Whether the directory `fd` is an opaque directory of an overlay's upper layer.
fn opaque(fd: &OwnedFd) -> bool {
    // Through `/proc/self/fd/N`, which names exactly this directory: `fd` is `O_PATH`, which
    // fgetxattr refuses.
    let Ok(path) = CString::new(fsx::fd_path(fd).into_os_string().into_vec()) else {
        return false;
    };
    let mut v = [0u8; 2];
    // SAFETY: getxattr with a NUL-terminated path into a buffer of the given length.
    let n = unsafe {
        libc::getxattr(
            path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            v.as_mut_ptr().cast(),
            v.len(),
        )
    };
    n == 1 && v[0] == b'y'
}

/// File name of the archive of snapshot `id` (a server-issued id).
pub fn file_name(id: &str) -> String {
    if legacy() {
        format!("{id}.tar.gz")
    } else {
        format!("{id}.tar.zst")
    }
}

/// Temporary path of the archive of snapshot `id` under `tmp_dir`.
pub fn tmp_path(tmp_dir: &Path, id: &str) -> PathBuf {
    tmp_dir.join(format!("{id}.tar.zst.partial"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    fn base(tag: &str) -> PathBuf {
        let b = std::env::temp_dir().join(format!("archive-{tag}-{}", crate::model::new_id("")));
        std::fs::create_dir_all(b.join("root")).unwrap();
        std::fs::create_dir_all(b.join("tmp")).unwrap();
        std::fs::create_dir_all(b.join("out")).unwrap();
        b
    }

    fn snapshot_and_restore(b: &Path) -> Stats {
        let dst = b.join("snap.tar.zst");
        let stats = create(&b.join("root"), &tmp_path(&b.join("tmp"), "s"), &dst, false).unwrap();
        let out = fsx::open_dir(&b.join("out")).unwrap();
        crate::unpack::extract(&dst, &out, false).unwrap();
        stats
    }

    #[test]
    fn round_trip_keeps_files_links_and_skips_system_dirs() {
        let b = base("trip");
        let root = b.join("root");
        std::fs::create_dir_all(root.join("data/sub")).unwrap();
        std::fs::create_dir_all(root.join("usr")).unwrap();
        std::fs::write(root.join("data/output.csv"), b"a,b\n1,2\n").unwrap();
        std::fs::write(root.join("usr/ignored"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("data/link")).unwrap();
        let long = "n".repeat(120);
        std::fs::create_dir_all(root.join(&long).join(&long)).unwrap();
        std::fs::write(root.join(&long).join(&long).join("f"), b"deep").unwrap();
        std::os::unix::fs::symlink("/".to_string() + &long, root.join("longlink")).unwrap();
        let stats = snapshot_and_restore(&b);
        assert_eq!(stats.content_bytes, 12);
        let out = b.join("out");
        assert_eq!(
            std::fs::read(out.join("data/output.csv")).unwrap(),
            b"a,b\n1,2\n"
        );
        assert_eq!(
            std::fs::read_link(out.join("data/link")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert_eq!(
            std::fs::read(out.join(&long).join(&long).join("f")).unwrap(),
            b"deep"
        );
        assert_eq!(
            std::fs::read_link(out.join("longlink")).unwrap(),
            PathBuf::from("/".to_string() + &long)
        );
        assert!(!out.join("usr").exists());
        std::fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn setuid_and_setgid_bits_are_dropped_in_the_archive_and_on_restore() {
        let b = base("suid");
        let f = b.join("root/x");
        std::fs::write(&f, b"#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o6755)).unwrap();
        std::fs::create_dir(b.join("root/d")).unwrap();
        std::fs::set_permissions(b.join("root/d"), std::fs::Permissions::from_mode(0o3775))
            .unwrap();
        snapshot_and_restore(&b);
        let zst = zstd::stream::read::Decoder::new(File::open(b.join("snap.tar.zst")).unwrap()).unwrap();
        for e in tar::Archive::new(zst).entries().unwrap() {
            let e = e.unwrap();
            assert_eq!(e.header().mode().unwrap() & 0o6000, 0, "{:?}", e.path());
        }
        assert_eq!(
            std::fs::metadata(b.join("out/x")).unwrap().mode() & 0o7777,
            0o755
        );
        assert_eq!(
            std::fs::metadata(b.join("out/d")).unwrap().mode() & 0o7777,
            0o1775
        );
        std::fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn sparse_files_are_archived_without_their_holes_and_restored_with_them() {
        let b = base("sparse");
        let f = File::create(b.join("root/big")).unwrap();
        let size = 4u64 << 30;
        f.set_len(size).unwrap();
        use std::os::unix::fs::FileExt;
        // Six data runs: more than the four a GNU header holds, so extension headers are used.
        for i in 0..6u64 {
            f.write_all_at(&[i as u8 + 1; 5000], i * (512 << 20))
                .unwrap();
        }
        f.write_all_at(b"end", size - 3).unwrap();
        drop(f);
        let stats = snapshot_and_restore(&b);
        assert_eq!(stats.content_bytes, size);
        assert!(
            stats.size_bytes < 1 << 20,
            "archive of {} bytes",
            stats.size_bytes
        );
        let out = File::open(b.join("out/big")).unwrap();
        let meta = out.metadata().unwrap();
        assert_eq!(meta.len(), size);
        assert!(meta.blocks() * 512 < 16 << 20, "{} blocks", meta.blocks());
        let mut buf = [0u8; 5000];
        for i in 0..6u64 {
            out.read_exact_at(&mut buf, i * (512 << 20)).unwrap();
            assert!(buf.iter().all(|x| *x == i as u8 + 1));
        }
        let mut end = [0u8; 3];
        out.read_exact_at(&mut end, size - 3).unwrap();
        assert_eq!(&end, b"end");
        std::fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn hard_links_are_archived_once_and_restored_as_links() {
        let b = base("links");
        let root = b.join("root");
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("d/a"), vec![7u8; 100_000]).unwrap();
        for i in 0..50 {
            std::fs::hard_link(root.join("d/a"), root.join(format!("l{i}"))).unwrap();
        }
        let stats = snapshot_and_restore(&b);
        assert_eq!(stats.content_bytes, 100_000, "the data counted once");
        let out = b.join("out");
        let ino = std::fs::metadata(out.join("d/a")).unwrap().ino();
        for i in 0..50 {
            let m = std::fs::metadata(out.join(format!("l{i}"))).unwrap();
            assert_eq!(m.ino(), ino, "l{i} is a link again");
        }
        assert_eq!(std::fs::read(out.join("l7")).unwrap(), vec![7u8; 100_000]);
        std::fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn files_larger_than_twice_the_file_system_fail_the_snapshot_naming_one() {
        let b = base("huge");
        let f = File::create(b.join("root/huge")).unwrap();
        // SAFETY: statfs into a zeroed struct.
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        let c = CString::new(b.as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::statfs(c.as_ptr(), &mut fs) }, 0);
        let capacity = fs.f_blocks as u64 * fs.f_bsize as u64;
        f.set_len(capacity * 2 + 4096).unwrap();
        drop(f);
        let err = create(&b.join("root"), &tmp_path(&b.join("tmp"), "s"), &b.join("s.tar.zst"), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/huge") && err.contains("twice"), "{err}");
        assert!(!b.join("s.tar.zst").exists());
        std::fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn archives_from_the_tar_builder_still_restore() {
        // What `create` wrote before: tar::Builder entries, modes as on disk.
        let b = base("old");
        let dst = b.join("old.tar.gz");
        let gz = flate2::write::GzEncoder::new(File::create(&dst).unwrap(), flate2::Compression::fast());
        let mut t = tar::Builder::new(gz);
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Directory);
        h.set_mode(0o755);
        h.set_size(0);
        t.append_data(&mut h, "data", io::empty()).unwrap();
        let mut h = tar::Header::new_gnu();
        h.set_mode(0o4755);
        h.set_size(5);
        t.append_data(&mut h, "data/f", &b"hello"[..]).unwrap();
        t.into_inner().unwrap().finish().unwrap();
        let out = fsx::open_dir(&b.join("out")).unwrap();
        crate::unpack::extract(&dst, &out, false).unwrap();
        assert_eq!(std::fs::read(b.join("out/data/f")).unwrap(), b"hello");
        assert_eq!(
            std::fs::metadata(b.join("out/data/f")).unwrap().mode() & 0o7777,
            0o755
        );
        std::fs::remove_dir_all(&b).unwrap();
    }

    #[test]
    fn a_deep_tree_round_trips_on_a_small_stack() {
        let b = base("deep");
        let mut cur = fsx::open_dir(&b.join("root")).unwrap();
        let d = fsx::cstr(b"d").unwrap();
        for _ in 0..3000 {
            fsx::mkdir_at(&cur, &d, 0o755).unwrap();
            cur = fsx::open_dir_at(&cur, &d).unwrap().0;
        }
        drop(cur);
        let b2 = b.clone();
        std::thread::Builder::new()
            .stack_size(128 * 1024)
            .spawn(move || snapshot_and_restore(&b2))
            .unwrap()
            .join()
            .unwrap();
        let mut cur = fsx::open_dir(&b.join("out")).unwrap();
        for _ in 0..3000 {
            cur = fsx::open_dir_at(&cur, &d).unwrap().0;
        }
        crate::dirwalk::remove_path(&b).unwrap();
    }
}
