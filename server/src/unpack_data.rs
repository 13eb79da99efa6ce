//! The data side of a restore: the archive's decompressed bytes (zstd or gzip), file contents
//! written with their holes, and the overlayfs markers of a sandbox's layer.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::FileExt;
use std::path::Path;

use flate2::read::GzDecoder;

use crate::fsx;
use crate::unpack::damaged;

/// Zero runs at least this long become holes.
const HOLE_BLOCK: usize = 64 * 1024;

/// The decompressed stream of an archive file: zstd (this server's archives) or gzip (archives
/// written before), told apart by their magic numbers.
pub fn decompressed(archive: &Path) -> io::Result<Box<dyn Read>> {
    let mut file = File::open(archive)?;
    let mut magic = [0u8; 4];
    let n = file.read(&mut magic)?;
    file.rewind()?;
    let buf = BufReader::with_capacity(256 * 1024, file);
    if n == 4 && magic == [0x28, 0xb5, 0x2f, 0xfd] {
        let d = zstd::stream::read::Decoder::with_buffer(buf).map_err(damaged)?;
        Ok(Box::new(d))
    } else {
        Ok(Box::new(GzDecoder::new(buf)))
    }
}

/// Whether the entry's pax records mark it as an opaque directory.
pub fn is_opaque<R: Read>(entry: &mut tar::Entry<'_, R>) -> bool {
    let Ok(Some(exts)) = entry.pax_extensions() else {
        return false;
    };
    exts.flatten().any(|e| {
        e.key_bytes() == b"SCHILY.xattr.trusted.overlay.opaque" && e.value_bytes() == b"y"
    })
}

/// Alignment of direct I/O: the logical block size of any disk or ext4 this server makes.
const DIRECT_ALIGN: usize = 4096;

/// Copies `data` into `file`, seeking over zero blocks instead of writing them; returns the
/// length (the caller sets it, which makes a trailing hole).
///
/// A file of a megabyte or more is written with `O_DIRECT` (decided once its first megabyte is
/// read): into a sandbox's disk (a loop device that itself does direct I/O) the data then goes to
/// the image once, skipping the page cache that a buffered write fills and the kernel then writes
/// back. Measured on this machine (BENCHMARKS.md, issue 13): a 1 GiB restore 0.62-0.78 s instead
/// of 2.8-3.0 s. The unaligned tail is written buffered. Where `O_DIRECT` is refused (tmpfs), it
/// stays buffered.
pub fn write_with_holes<R: Read>(file: &File, data: &mut R) -> io::Result<u64> {
    const CHUNK: usize = 1024 * 1024;
    let mut raw = vec![0u8; CHUNK + DIRECT_ALIGN];
    let pad = raw.as_ptr().align_offset(DIRECT_ALIGN).min(DIRECT_ALIGN);
    let buf = &mut raw[pad..pad + CHUNK];
    let mut direct = false;
    let mut off = 0u64;
    loop {
        let mut filled = 0;
        while filled < buf.len() {
            match data.read(&mut buf[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(damaged(e)),
            }
        }
        if filled == 0 {
            return Ok(off);
        }
        if filled == buf.len() && off == 0 {
            direct = set_direct(file, true);
        } else if direct && filled % DIRECT_ALIGN != 0 {
            direct = !set_direct(file, false);
        }
        // Runs of data blocks are written with one call each: a dense file costs one write per
        // megabyte, not sixteen.
        let mut run_start: Option<usize> = None;
        for (i, block) in buf[..filled].chunks(HOLE_BLOCK).enumerate() {
            let at = i * HOLE_BLOCK;
            if is_zero(block) {
                if let Some(start) = run_start.take() {
                    file.write_all_at(&buf[start..at], off + start as u64)?;
                }
            } else if run_start.is_none() {
                run_start = Some(at);
            }
        }
        if let Some(start) = run_start {
            file.write_all_at(&buf[start..filled], off + start as u64)?;
        }
        off += filled as u64;
        if filled < buf.len() {
            return Ok(off);
        }
    }
}

/// Turns `O_DIRECT` on or off for `file`; whether that took.
fn set_direct(file: &File, on: bool) -> bool {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor `file` owns, with integer arguments.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        if flags < 0 {
            return false;
        }
        let want = if on { flags | libc::O_DIRECT } else { flags & !libc::O_DIRECT };
        libc::fcntl(fd, libc::F_SETFL, want) == 0
    }
}

fn is_zero(block: &[u8]) -> bool {
    let (head, words, tail) = {
        // SAFETY: u64 has no invalid bit patterns; align_to handles the unaligned ends.
        unsafe { block.align_to::<u64>() }
    };
    head.iter().all(|b| *b == 0) && words.iter().all(|w| *w == 0) && tail.iter().all(|b| *b == 0)
}

/// Marks the directory `fd` (`O_PATH`) opaque for overlayfs.
pub fn set_opaque(fd: &OwnedFd) -> io::Result<()> {
    // Through `/proc/self/fd/N` (exactly this directory): fsetxattr refuses `O_PATH`.
    let path = std::ffi::CString::new(fsx::fd_path(fd).into_os_string().into_vec())
        .map_err(io::Error::other)?;
    // SAFETY: setxattr with NUL-terminated path and name and a 1-byte value.
    let rc = unsafe {
        libc::setxattr(
            path.as_ptr(),
            c"trusted.overlay.opaque".as_ptr(),
            b"y".as_ptr().cast(),
            1,
            0,
        )
    };
    if rc < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    /// Bytes that are never a zero block: a counter pattern.
    fn pattern(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) | 1).collect()
    }

    /// Large files go through the O_DIRECT path (on a disk-backed directory; tmpfs refuses it
    /// and stays buffered), with holes in the middle and an unaligned tail: the bytes read back
    /// are the bytes written, and the holes are holes.
    #[test]
    fn large_files_round_trip_with_holes_and_an_unaligned_tail() {
        let dir = std::env::temp_dir().join(format!("tl-direct-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (name, tail) in [("aligned", 0usize), ("odd", 12_345)] {
            let mut data = pattern(3 << 20, 7);
            data.extend(vec![0u8; 4 << 20]); // a 4 MiB hole
            data.extend(pattern((2 << 20) + tail, 9));
            let path = dir.join(name);
            let file = File::options().create_new(true).write(true).open(&path).unwrap();
            let len = write_with_holes(&file, &mut &data[..]).unwrap();
            file.set_len(len).unwrap();
            drop(file);
            assert_eq!(len as usize, data.len());
            let back = std::fs::read(&path).unwrap();
            assert!(back == data, "{name}: the bytes differ");
            let meta = std::fs::metadata(&path).unwrap();
            assert!(
                meta.blocks() * 512 < data.len() as u64 - (3 << 20),
                "{name}: the zero run was written ({} blocks)",
                meta.blocks()
            );
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
