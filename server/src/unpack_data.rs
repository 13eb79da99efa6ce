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

/// Copies `data` into `file`, seeking over zero blocks instead of writing them; returns the
/// length (the caller sets it, which makes a trailing hole).
pub fn write_with_holes<R: Read>(file: &File, data: &mut R) -> io::Result<u64> {
    let mut buf = vec![0u8; 1024 * 1024];
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
