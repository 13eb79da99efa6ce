//! The disk limit: each sandbox's root is its own ext4 filesystem of `disk_mb`, in a sparse image
//! file (`sandboxes/<id>/disk.img`) mounted on `sandboxes/<id>/root` through a loop device with
//! `nosuid,nodev`. A sandbox that fills it gets ENOSPC; the server's disk and every other
//! sandbox's are untouched.
//!
//! Why a filesystem per sandbox rather than project quotas on one shared volume: quotas need a
//! volume made for them (mounted `prjquota`) and the quota tools, and one shared volume can still
//! be filled through its metadata; an image is self-contained. Measured here (kernel 6.18, ext4
//! on virtio): `mkfs.ext4 -O ^has_journal -E lazy_itable_init=1` of a 10 GiB sparse image takes
//! about 50 ms and writes 4.3 MB (the inode tables are left unwritten; `noinit_itable` stops the
//! kernel from zeroing them later, which would cost 160 MB per 10 GiB), mounting it about 75 ms.
//! A 1 TiB image takes 0.13 s and 16 MB, but 15 TiB takes 3.8 s and 219 MB, so an image is never
//! made larger than the host filesystem holding it (it could not be filled beyond that anyway).
//! No journal: a sandbox is scratch space, and after a host crash ext4 mounts without one.
//!
//! `lost+found` is removed after mkfs, so the sandbox's `/` holds only its own files; e2fsck would
//! recreate it if a repair ever needed it.
//!
//! Mounts live only while the server runs: they are remade at start-up, and removed when it
//! exits, however it exits (see `reaper.rs`).

use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Smallest image made: ext4 needs room for its own metadata.
const MIN_IMAGE_MB: u64 = 4;

/// The tools for per-sandbox filesystems, once checked to work.
#[derive(Debug, Clone)]
pub struct Disk {
    mkfs: PathBuf,
    mount: PathBuf,
    /// Size of the filesystem holding the data directory: the largest image worth making.
    max_bytes: u64,
}

/// The image file of the sandbox whose directory is `sandbox_dir`.
pub fn image_path(sandbox_dir: &Path) -> PathBuf {
    sandbox_dir.join("disk.img")
}

fn find(name: &str) -> Option<PathBuf> {
    ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
}

fn run(cmd: &mut Command) -> io::Result<()> {
    let out = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()?;
    if out.status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "{:?} failed ({}): {}",
            cmd.get_program(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )))
    }
}

impl Disk {
    /// Checks that images can be made and mounted here, with a real 4 MiB one in `scratch`.
    /// The caller has checked that the server runs as root.
    pub fn detect(scratch: &Path, data: &Path) -> Result<Disk, String> {
        let mkfs =
            find("mkfs.ext4").ok_or("no mkfs.ext4 (Debian/Ubuntu: apt-get install e2fsprogs)")?;
        let mount = find("mount").ok_or("no mount binary")?;
        if !Path::new("/dev/loop-control").exists() {
            return Err("no /dev/loop-control (loop devices are not available)".into());
        }
        // SAFETY: statvfs on a NUL-terminated path into a zeroed struct; the result is checked.
        let max_bytes = unsafe {
            let c =
                std::ffi::CString::new(data.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
            let mut s: libc::statvfs = std::mem::zeroed();
            if libc::statvfs(c.as_ptr(), &mut s) != 0 {
                return Err(format!(
                    "statvfs {}: {}",
                    data.display(),
                    io::Error::last_os_error()
                ));
            }
            s.f_blocks as u64 * s.f_frsize as u64
        };
        let disk = Disk {
            mkfs,
            mount,
            max_bytes,
        };
        let dir = scratch.join("disk-probe");
        let _ = unmount(&dir.join("root"));
        let _ = std::fs::remove_dir_all(&dir);
        let root = dir.join("root");
        let result = std::fs::create_dir_all(&root)
            .and_then(|()| disk.create(&dir, &root, 4, (0, 0)))
            .and_then(|()| unmount(&root));
        let _ = std::fs::remove_dir_all(&dir);
        result.map_err(|e| format!("a test filesystem could not be made and mounted: {e}"))?;
        Ok(disk)
    }

    /// Makes a `mb` MiB filesystem owned by `owner` for the sandbox in `sandbox_dir` and mounts
    /// it on `root` (an empty directory).
    pub fn create(
        &self,
        sandbox_dir: &Path,
        root: &Path,
        mb: i64,
        owner: (u32, u32),
    ) -> io::Result<()> {
        let image = image_path(sandbox_dir);
        let bytes = (mb.max(0) as u64).max(MIN_IMAGE_MB) << 20;
        let bytes = bytes.min(self.max_bytes.max(MIN_IMAGE_MB << 20));
        {
            use std::os::unix::fs::OpenOptionsExt;
            let f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&image)?;
            f.set_len(bytes)?;
        }
        run(Command::new(&self.mkfs)
            .args(["-q", "-F", "-O", "^has_journal", "-m", "0", "-E"])
            .arg(format!(
                "lazy_itable_init=1,nodiscard,root_owner={}:{}",
                owner.0, owner.1
            ))
            .arg(&image))?;
        self.mount(&image, root)?;
        let _ = std::fs::remove_dir(root.join("lost+found"));
        Ok(())
    }

    /// Mounts an existing image on `root`.
    pub fn mount(&self, image: &Path, root: &Path) -> io::Result<()> {
        run(Command::new(&self.mount)
            .args(["-t", "ext4", "-o", "loop,nosuid,nodev,noinit_itable"])
            .arg(image)
            .arg(root))?;
        direct_io(root);
        Ok(())
    }
}

/// Switches the loop device mounted on `root` to direct I/O, where the host filesystem allows
/// it: the image's pages are then cached once (by the sandbox's filesystem), not twice, and no
/// kernel thread copies every write a second time into the image file's cache. A sandbox that
/// writes a gigabyte (or a restore of one) then costs one copy. Best effort: buffered I/O works
/// too, only slower.
fn direct_io(root: &Path) {
    const LOOP_SET_DIRECT_IO: libc::c_ulong = 0x4C08;
    let Some(dev) = mount_source(root) else {
        return;
    };
    if !dev.as_os_str().as_bytes().starts_with(b"/dev/loop") {
        return;
    }
    let Ok(f) = std::fs::File::open(&dev) else {
        return;
    };
    use std::os::fd::AsRawFd;
    // SAFETY: an ioctl with an integer argument on an open loop device.
    unsafe {
        libc::ioctl(f.as_raw_fd(), LOOP_SET_DIRECT_IO as _, 1 as libc::c_ulong);
    }
}

/// The source (device) of the mount on exactly `path`, from `/proc/self/mountinfo`.
fn mount_source(path: &Path) -> Option<PathBuf> {
    let info = std::fs::read("/proc/self/mountinfo").ok()?;
    info.split(|b| *b == b'\n').rev().find_map(|line| {
        let fields: Vec<&[u8]> = line.split(|b| *b == b' ').collect();
        let point = PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(fields.get(4)?)));
        if point != path {
            return None;
        }
        let sep = fields.iter().position(|f| *f == b"-")?;
        let src = fields.get(sep + 2)?;
        Some(PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(src))))
    })
}

/// Detaches the filesystem mounted on `root`, if any (a lazy unmount: a process still inside
/// cannot keep it, and the loop device is freed once the last user is gone).
pub fn unmount(root: &Path) -> io::Result<()> {
    let c = std::ffi::CString::new(root.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: umount2 on a NUL-terminated path.
    if unsafe { libc::umount2(c.as_ptr(), libc::MNT_DETACH | libc::UMOUNT_NOFOLLOW) } == 0 {
        return Ok(());
    }
    let e = io::Error::last_os_error();
    match e.raw_os_error() {
        // Not a mount point, or already gone.
        Some(libc::EINVAL) | Some(libc::ENOENT) => Ok(()),
        _ => Err(e),
    }
}

/// Whether something is mounted exactly on `path`.
pub fn is_mounted(path: &Path) -> bool {
    mount_points().iter().any(|m| m == path)
}

/// Detaches every mount under `dir` (deepest first); returns how many.
pub fn unmount_under(dir: &Path) -> usize {
    let mut points: Vec<PathBuf> = mount_points()
        .into_iter()
        .filter(|m| m.starts_with(dir) && m != dir)
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.as_os_str().len()));
    points.iter().filter(|p| unmount(p).is_ok()).count()
}

/// Mount points of this mount namespace, from `/proc/self/mountinfo` (field 5, octal-escaped).
fn mount_points() -> Vec<PathBuf> {
    let Ok(info) = std::fs::read("/proc/self/mountinfo") else {
        return Vec::new();
    };
    info.split(|b| *b == b'\n')
        .filter_map(|line| line.split(|b| *b == b' ').nth(4))
        .map(|field| PathBuf::from(std::ffi::OsStr::from_bytes(&unescape(field))))
        .collect()
}

fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\'
            && i + 3 < field.len()
            && field[i + 1..i + 4]
                .iter()
                .all(|c| (b'0'..=b'7').contains(c))
        {
            out.push(
                (field[i + 1] - b'0') * 64 + (field[i + 2] - b'0') * 8 + (field[i + 3] - b'0'),
            );
            i += 4;
        } else {
            out.push(field[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn mountinfo_escapes_are_decoded() {
        assert_eq!(super::unescape(br"/a\040b"), b"/a b");
        assert_eq!(super::unescape(br"/x\"), br"/x\");
    }
}
