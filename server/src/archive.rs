//! Snapshot archives: a sandbox root as a gzip-compressed tar, written atomically, and restored
//! into a fresh root.
//!
//! Writing walks the tree through directory descriptors with `O_NOFOLLOW` (see `fsx`), so a
//! process that swaps a directory for a link mid-walk cannot make the server archive host files.
//! Files that change size while being read are stored at the size first seen (cut or zero-padded)
//! so the tar stays well-formed. Only regular files, directories and symlinks are kept.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;

use crate::fsx;
use crate::jail::SYSTEM_DIRS;

/// What an archive holds.
#[derive(Debug, Clone, Copy)]
pub struct Stats {
    /// Size of the archive file.
    pub size_bytes: u64,
    /// Sum of the sizes of the regular files in it.
    pub content_bytes: u64,
}

/// Archives the tree at `root` into `dst`, through `tmp`: the data is written and fsynced under
/// the temporary name, renamed, and the directory fsynced, so `dst` is either absent or whole.
pub fn create(root: &Path, tmp: &Path, dst: &Path) -> io::Result<Stats> {
    let result = write_tmp(root, tmp);
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

fn write_tmp(root: &Path, tmp: &Path) -> io::Result<u64> {
    let file = File::create(tmp)?;
    // Fast compression: snapshots are on the request path of a demo, and sandbox trees are small.
    let gz = GzEncoder::new(
        BufWriter::with_capacity(256 * 1024, file),
        Compression::fast(),
    );
    let mut builder = tar::Builder::new(gz);
    builder.mode(tar::HeaderMode::Complete);
    let root_fd = fsx::open_at_nofollow(
        &fsx::open_dir(root.parent().unwrap_or(Path::new("/")))?,
        root.file_name().unwrap_or(OsStr::new(".")),
        libc::O_RDONLY | libc::O_DIRECTORY,
    )?;
    let mut content = 0u64;
    walk(&mut builder, &root_fd, Path::new(""), true, &mut content)?;
    let gz = builder.into_inner()?;
    let buf = gz.finish()?;
    let file = buf.into_inner().map_err(|e| e.into_error())?;
    file.sync_all()?;
    Ok(content)
}

fn walk<W: Write>(
    b: &mut tar::Builder<W>,
    dir: &OwnedFd,
    rel: &Path,
    top: bool,
    content: &mut u64,
) -> io::Result<()> {
    let mut names: Vec<_> = std::fs::read_dir(fsx::fd_path(dir))?
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    // Sorted: the same tree always gives the same archive.
    names.sort();
    for name in names {
        if top && SYSTEM_DIRS.iter().any(|s| OsStr::new(s) == name) {
            continue;
        }
        let path = rel.join(&name);
        let meta = match std::fs::symlink_metadata(fsx::fd_path(dir).join(&name)) {
            Ok(m) => m,
            // Deleted by a running process since the listing: it is simply not in the snapshot.
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        let ft = meta.file_type();
        let mut header = tar::Header::new_gnu();
        header.set_mtime(meta.mtime().max(0) as u64);
        header.set_uid(0);
        header.set_gid(0);
        header.set_mode(meta.permissions().mode() & 0o7777);
        if ft.is_dir() {
            let sub = match fsx::open_at_nofollow(dir, &name, libc::O_RDONLY | libc::O_DIRECTORY) {
                Ok(fd) => fd,
                Err(e)
                    if matches!(
                        e.raw_os_error(),
                        Some(libc::ENOENT) | Some(libc::ENOTDIR) | Some(libc::ELOOP)
                    ) =>
                {
                    continue
                }
                Err(e) => return Err(e),
            };
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            b.append_data(&mut header, &path, io::empty())?;
            walk(b, &sub, &path, false, content)?;
        } else if ft.is_symlink() {
            let target = match fsx::readlink_at(dir, &name) {
                Ok(t) => t,
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => return Err(e),
            };
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            b.append_link(&mut header, &path, &target)?;
        } else if ft.is_file() {
            // O_NONBLOCK: if the entry became a FIFO since the stat, opening must not hang.
            let fd = match fsx::open_at_nofollow(dir, &name, libc::O_RDONLY | libc::O_NONBLOCK) {
                Ok(fd) => fd,
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT) | Some(libc::ELOOP)) => {
                    continue
                }
                Err(e) => return Err(e),
            };
            let fmeta = fsx::fstat(&fd)?;
            if !fmeta.is_file() {
                continue;
            }
            let len = fmeta.len();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(len);
            *content += len;
            let reader = ExactLen {
                inner: fsx::into_file(fd),
                left: len,
            };
            b.append_data(&mut header, &path, reader)?;
        }
        // FIFOs, sockets and device nodes are not files a snapshot can carry.
    }
    Ok(())
}

/// Reads exactly `left` bytes: the file's bytes, then zeros if it shrank meanwhile.
struct ExactLen {
    inner: File,
    left: u64,
}

impl Read for ExactLen {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            return Ok(0);
        }
        let want = buf.len().min(self.left as usize);
        let n = match self.inner.read(&mut buf[..want])? {
            0 => {
                buf[..want].fill(0);
                want
            }
            n => n,
        };
        self.left -= n as u64;
        Ok(n)
    }
}

/// Unpacks `archive` into `dest`, a fresh directory nobody else writes to. The tar crate refuses
/// entries that would land outside `dest` (`..`, absolute paths, writes through links).
pub fn extract(archive: &Path, dest: &Path) -> io::Result<()> {
    let file = File::open(archive)?;
    let mut ar = tar::Archive::new(GzDecoder::new(io::BufReader::with_capacity(
        256 * 1024,
        file,
    )));
    ar.set_preserve_permissions(true);
    ar.set_preserve_mtime(true);
    ar.set_overwrite(true);
    ar.unpack(dest)
}

/// File name of the archive of snapshot `id` (a server-issued id).
pub fn file_name(id: &str) -> String {
    format!("{id}.tar.gz")
}

/// Temporary path of the archive of snapshot `id` under `tmp_dir`.
pub fn tmp_path(tmp_dir: &Path, id: &str) -> PathBuf {
    tmp_dir.join(format!("{id}.tar.gz.partial"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_files_links_and_skips_system_dirs() {
        let base = std::env::temp_dir().join(format!("archive-test-{}", crate::model::new_id("")));
        let root = base.join("root");
        std::fs::create_dir_all(root.join("data/sub")).unwrap();
        std::fs::create_dir_all(root.join("usr")).unwrap();
        std::fs::create_dir_all(base.join("tmp")).unwrap();
        std::fs::write(root.join("data/output.csv"), b"a,b\n1,2\n").unwrap();
        std::fs::write(root.join("usr/ignored"), b"x").unwrap();
        std::os::unix::fs::symlink("/etc/passwd", root.join("data/link")).unwrap();
        let dst = base.join("snap.tar.gz");
        let stats = create(&root, &tmp_path(&base.join("tmp"), "s"), &dst).unwrap();
        assert_eq!(stats.content_bytes, 8);
        assert_eq!(stats.size_bytes, std::fs::metadata(&dst).unwrap().len());
        let out = base.join("out");
        std::fs::create_dir_all(&out).unwrap();
        extract(&dst, &out).unwrap();
        assert_eq!(
            std::fs::read(out.join("data/output.csv")).unwrap(),
            b"a,b\n1,2\n"
        );
        assert_eq!(
            std::fs::read_link(out.join("data/link")).unwrap(),
            Path::new("/etc/passwd")
        );
        assert!(!out.join("usr").exists());
        std::fs::remove_dir_all(&base).unwrap();
    }
}
