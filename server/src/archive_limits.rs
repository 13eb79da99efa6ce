//! What a snapshot may cost, whatever the sandbox put in its tree.
//!
//! The tree being archived is written by the sandbox's own code, which may run while the
//! snapshot is taken. Two things would otherwise let it make an archive far larger than its
//! disk, or one whose restore reads for hours:
//! - hard links: a file linked 1,000 times would be archived 1,000 times. Each further link of
//!   a file is a link entry instead (as GNU tar writes them), and a restore links it again;
//! - sizes: a sparse file may be as large as the file system allows (16 TiB on ext4) while using
//!   4 KiB, and a restore reads its holes as zeros; a file moved back and forth while the walk
//!   runs may be seen many times. So the files' sizes together may not exceed twice the capacity
//!   of the file system that holds the tree (the sandbox's disk, `disk_mb`): a full disk fits,
//!   with as much again of holes; beyond it the snapshot fails, naming the file.

use std::collections::HashMap;
use std::io;
use std::os::fd::AsRawFd;

/// Bytes of names (each plus `dirwalk::NAME_OVERHEAD`) the walk may hold at once, over all the
/// levels it is inside: a sandbox can fill one directory with tens of millions of long names (hard
/// links need no inode), which would otherwise all be held to sort them.
pub const NAMES_MAX: usize = 128 << 20;

/// Link paths longer than this are archived as copies: a restore could not reopen them
/// (`PATH_MAX`), and it bounds the memory of the table below.
const LINK_PATH_MAX: usize = 4000;
/// Bytes of link paths remembered per archive; links past it are archived as copies (which the
/// size budget still bounds).
const LINK_TABLE_MAX: usize = 64 << 20;

/// The first archived path of each file with more than one link, by device and inode.
#[derive(Default)]
pub struct Links {
    seen: HashMap<(u64, u64), Vec<u8>>,
    bytes: usize,
}

impl Links {
    /// The archive path a file with this `st` was already stored under.
    pub fn first(&self, st: &libc::stat) -> Option<&[u8]> {
        if st.st_nlink < 2 {
            return None;
        }
        self.seen
            .get(&(st.st_dev as u64, st.st_ino as u64))
            .map(Vec::as_slice)
    }

    /// Remembers that the file `st` was archived whole as `path`.
    pub fn archived(&mut self, st: &libc::stat, path: &[u8]) {
        if st.st_nlink < 2
            || path.len() > LINK_PATH_MAX
            || self.bytes + path.len() > LINK_TABLE_MAX
        {
            return;
        }
        self.bytes += path.len();
        self.seen
            .insert((st.st_dev as u64, st.st_ino as u64), path.to_vec());
    }
}

/// How many bytes of file sizes the archive may still take.
pub struct SizeBudget {
    capacity: u64,
    left: u64,
}

impl SizeBudget {
    /// Twice the capacity of the file system holding `root` (see the module documentation).
    pub fn of(root: &impl AsRawFd) -> io::Result<SizeBudget> {
        // SAFETY: fstatfs writes into a zeroed struct we own; `root` is an open descriptor.
        let mut fs: libc::statfs = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstatfs(root.as_raw_fd(), &mut fs) } != 0 {
            return Err(io::Error::last_os_error());
        }
        let capacity = (fs.f_blocks as u64).saturating_mul(fs.f_bsize as u64);
        Ok(SizeBudget {
            capacity,
            left: capacity.saturating_mul(2),
        })
    }

    /// Takes `size` bytes for the file at archive path `path`, or refuses with an error that
    /// names it.
    pub fn take(&mut self, path: &[u8], size: u64) -> io::Result<()> {
        match self.left.checked_sub(size) {
            Some(left) => {
                self.left = left;
                Ok(())
            }
            None => Err(io::Error::other(format!(
                "the files came to more than twice the sandbox's disk ({} bytes) at /{} ({size} bytes): \
                 a file that large (sparse) or files rewritten while the snapshot ran cannot be archived",
                self.capacity,
                String::from_utf8_lossy(&path[..path.len().min(200)])
            ))),
        }
    }
}
