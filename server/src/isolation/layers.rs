//! A sandbox's own layer over the read-only image base (see `image`), with overlayfs.
//!
//! Layout of `sandboxes/<id>/` when layers are on:
//! - `layer/` is where the sandbox's disk image is mounted (or a plain directory without one);
//!   it holds `upper/` (everything the sandbox changed: new and changed files, whiteouts for
//!   deletions, `trusted.overlay.opaque` on directories it replaced), `upper-usr/` (the same for
//!   `/usr`), and `work/` and `work-usr/` (overlayfs' scratch directories, owned by root);
//! - `root/` is an overlay of `upper/` over the base's root: the sandbox's `/`;
//! - `root/usr` is a second overlay of `upper-usr/` over the base's `/usr` additions and the
//!   host's `/usr`, so `pip install` writes to `/usr/local` inside the sandbox's layer and the
//!   host's `/usr` is never written (overlayfs never writes to a lower layer);
//! - `upper-usr/` is also bound on `upper/usr`, so the whole layer is one tree for the server:
//!   a snapshot archives `upper/` (see `archive`), and a restore unpacks into a fresh `upper/`
//!   before the overlays are mounted. (Each overlay still has an upper directory of its own:
//!   overlayfs does not support one upper layer inside another.)
//!
//! The directories a sandbox may write to (`/`, `/etc`, `/data`, `/usr/local/...`) are made in
//! `upper/` owned by the sandbox's uid, which overlayfs merges with the base's (root-owned)
//! ones; files of the base stay root's, as they would be in an image.
//!
//! Mounted `nosuid,nodev`, with `redirect_dir`, `index` and `metacopy` off, so the upper layer
//! holds only plain files, directories, links, whiteouts and opaque markers.

use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use crate::fsx::{self, Owner};
use crate::image::Base;

/// The sandbox's layer directory (mount point of its disk image).
pub fn layer_dir(sandbox_dir: &Path) -> PathBuf {
    sandbox_dir.join("layer")
}

/// The upper layer: what a snapshot archives.
pub fn upper_dir(sandbox_dir: &Path) -> PathBuf {
    layer_dir(sandbox_dir).join("upper")
}

/// Overlay mounts for sandboxes, once checked to work here.
#[derive(Debug, Clone)]
pub struct Layers {
    base: Base,
}

fn mkdir_owned(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> io::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    match std::fs::DirBuilder::new().mode(0o700).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    }
    if let Some((uid, gid)) = owner {
        std::os::unix::fs::lchown(path, Some(uid), Some(gid))?;
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Characters overlayfs' option string cannot carry in a path here.
fn plain(p: &Path) -> bool {
    !p.as_os_str()
        .as_bytes()
        .iter()
        .any(|b| matches!(b, b',' | b':' | b'\\' | b'\n' | 0))
}

fn overlay(lower: &[&Path], upper: &Path, work: &Path, target: &Path) -> io::Result<()> {
    let mut opts = b"lowerdir=".to_vec();
    for (i, l) in lower.iter().enumerate() {
        if i > 0 {
            opts.push(b':');
        }
        opts.extend_from_slice(l.as_os_str().as_bytes());
    }
    for (k, p) in [(",upperdir=", upper), (",workdir=", work)] {
        opts.extend_from_slice(k.as_bytes());
        opts.extend_from_slice(p.as_os_str().as_bytes());
    }
    opts.extend_from_slice(b",redirect_dir=off,index=off,metacopy=off");
    let opts = CString::new(opts).map_err(io::Error::other)?;
    let target = CString::new(target.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            c"overlay".as_ptr(),
            target.as_ptr(),
            c"overlay".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            opts.as_ptr().cast(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

impl Layers {
    /// Checks that an overlay of `base` can be mounted here, with a real one in `scratch`.
    /// The caller has checked that the server runs as root.
    pub fn detect(scratch: &Path, base: Base) -> Result<Layers, String> {
        for p in [scratch, &base.root, &base.usr] {
            if !plain(p) {
                return Err(format!(
                    "the data directory's path has a `,`, `:` or `\\`, which overlay mount options cannot carry: {}",
                    p.display()
                ));
            }
        }
        let layers = Layers { base };
        let dir = scratch.join("layers-probe");
        let layer = layer_dir(&dir);
        let _ = layers.unmount(&layer, &dir.join("root"));
        let _ = crate::dirwalk::remove_path(&dir);
        let result = (|| {
            std::fs::create_dir_all(dir.join("root"))?;
            std::fs::create_dir_all(&layer)?;
            layers.make_upper(&layer, (0, 0))?;
            layers.mount(&layer, &dir.join("root"))?;
            let ok = dir.join("root/etc/passwd").is_file() && dir.join("root/usr/bin").is_dir();
            layers.unmount(&layer, &dir.join("root"))?;
            if ok {
                Ok(())
            } else {
                Err(io::Error::other("the overlay does not show the base"))
            }
        })();
        let _ = layers.unmount(&layer, &dir.join("root"));
        let _ = crate::dirwalk::remove_path(&dir);
        result.map_err(|e| format!("an overlay could not be mounted: {e}"))?;
        Ok(layers)
    }

    /// Makes `upper/` (owned by `owner`, like the directories a sandbox may write to) and the
    /// work directories in `layer`. Idempotent.
    pub fn make_upper(&self, layer: &Path, owner: (u32, u32)) -> io::Result<()> {
        mkdir_owned(&layer.join("upper"), 0o755, Some(owner))?;
        mkdir_owned(&layer.join("upper/usr"), 0o755, Some(owner))?;
        mkdir_owned(&layer.join("upper-usr"), 0o755, Some(owner))?;
        mkdir_owned(&layer.join("work"), 0o700, None)?;
        mkdir_owned(&layer.join("work-usr"), 0o700, None)?;
        self.bind_usr(layer)
    }

    /// Binds the layer's `upper-usr/` on its `upper/usr` (see the module documentation).
    pub fn bind_usr(&self, layer: &Path) -> io::Result<()> {
        bind(&layer.join("upper-usr"), &layer.join("upper/usr"))
    }

    /// Makes, in `upper` (a descriptor: it may hold a restored archive's links), each directory
    /// of the base that the sandbox may write to and the archive did not bring, owned by the
    /// sandbox. A whiteout or a file in the way means the sandbox removed the directory: it
    /// stays removed.
    pub fn fill_upper(&self, upper: &std::os::fd::OwnedFd) -> io::Result<()> {
        let owner = Owner::of(upper)?;
        let mut dirs: Vec<(PathBuf, u32)> = Vec::new();
        collect_dirs(&self.base.root, Path::new(""), &mut dirs)?;
        dirs.push((PathBuf::from("usr"), 0o755));
        for d in &self.base.usr_writable {
            dirs.push((Path::new("usr").join(d), 0o755));
        }
        for (rel, mode) in dirs {
            make_dir_in(upper, &rel, mode, &owner)?;
        }
        Ok(())
    }

    /// Mounts the sandbox's `/` on `root` from the layer directory `layer` (see the module
    /// documentation).
    pub fn mount(&self, layer: &Path, root: &Path) -> io::Result<()> {
        let upper = layer.join("upper");
        overlay(&[&self.base.root], &upper, &layer.join("work"), root)?;
        let usr = root.join("usr");
        let r = overlay(
            &[&self.base.usr, Path::new("/usr")],
            &layer.join("upper-usr"),
            &layer.join("work-usr"),
            &usr,
        );
        if r.is_err() {
            let _ = super::disk::unmount(root);
        }
        r
    }

    /// Detaches both overlays of `root` and the `/usr` bind of the layer `layer`, if mounted.
    pub fn unmount(&self, layer: &Path, root: &Path) -> io::Result<()> {
        super::disk::unmount(&root.join("usr"))?;
        super::disk::unmount(root)?;
        super::disk::unmount(&layer.join("upper/usr"))
    }
}

/// Binds `from` on `to` (both the server's own directories).
fn bind(from: &Path, to: &Path) -> io::Result<()> {
    let from = CString::new(from.as_os_str().as_bytes()).map_err(io::Error::other)?;
    let to = CString::new(to.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: mount(2) with NUL-terminated strings that outlive the call.
    let rc = unsafe {
        libc::mount(
            from.as_ptr(),
            to.as_ptr(),
            std::ptr::null(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Directories of the base below `rel` that belong to the sandbox: all but the mount points.
fn collect_dirs(base: &Path, rel: &Path, out: &mut Vec<(PathBuf, u32)>) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mut stack = vec![rel.to_path_buf()];
    while let Some(rel) = stack.pop() {
        for e in std::fs::read_dir(base.join(&rel))? {
            let e = e?;
            if !e.file_type()?.is_dir() {
                continue;
            }
            let r = rel.join(e.file_name());
            let s = r.as_os_str().as_bytes();
            if matches!(s, b"usr" | b"proc" | b"dev" | b"sys" | b"etc/ssl/certs") {
                continue;
            }
            out.push((r.clone(), e.metadata()?.permissions().mode() & 0o7777));
            stack.push(r);
        }
    }
    out.sort();
    Ok(())
}

/// Makes directory `rel` below `upper` without following links, owned by `owner`; a missing
/// parent or anything but a directory in the way leaves it out.
fn make_dir_in(
    upper: &std::os::fd::OwnedFd,
    rel: &Path,
    mode: u32,
    owner: &Owner,
) -> io::Result<()> {
    let mut cur = upper.try_clone()?;
    let comps: Vec<_> = rel.iter().collect();
    for (i, c) in comps.iter().enumerate() {
        let name = fsx::cstr(c.as_bytes())?;
        let last = i + 1 == comps.len();
        match fsx::open_dir_at(&cur, &name) {
            Ok((fd, _)) => cur = fd,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) && last => {
                fsx::mkdir_at(&cur, &name, 0o700)?;
                let (fd, _) = fsx::open_dir_at(&cur, &name)?;
                owner.give_fd(&fd)?;
                fsx::chmod_dir(&fd, mode)?;
                return Ok(());
            }
            // Removed by the sandbox (a whiteout, a file, a link): leave it so.
            Err(_) => return Ok(()),
        }
    }
    Ok(())
}

/// Copies the image base at `base` (the server's own, trusted) into the sandbox root `dst`
/// where `dst` has nothing yet, for servers without layers. `dst` may hold a restored
/// archive's links: everything is made relative to directory descriptors, without following
/// links, and given to the root's owner. The mount points (`usr`, `proc`, `dev`, `sys`) are
/// left to the jail.
pub fn copy_missing(base: &Path, dst: &std::os::fd::OwnedFd) -> io::Result<()> {
    use std::os::fd::OwnedFd;
    use std::os::unix::fs::PermissionsExt;
    let owner = Owner::of(dst)?;
    let mut stack: Vec<(PathBuf, OwnedFd)> = vec![(base.to_path_buf(), dst.try_clone()?)];
    while let Some((src, dir)) = stack.pop() {
        for e in std::fs::read_dir(&src)? {
            let e = e?;
            let name = fsx::cstr(e.file_name().as_bytes())?;
            let ft = e.file_type()?;
            let at_top = src == base;
            if at_top && matches!(e.file_name().as_bytes(), b"usr" | b"proc" | b"dev" | b"sys") {
                continue;
            }
            let mode = e.metadata()?.permissions().mode() & 0o7777;
            if ft.is_dir() {
                match fsx::mkdir_at(&dir, &name, 0o700) {
                    Ok(()) => {
                        let (fd, _) = fsx::open_dir_at(&dir, &name)?;
                        owner.give_fd(&fd)?;
                        fsx::chmod_dir(&fd, mode)?;
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(e),
                }
                // A link or a file in the way: the restored tree wins, nothing goes below it.
                if let Ok((fd, _)) = fsx::open_dir_at(&dir, &name) {
                    stack.push((e.path(), fd));
                }
            } else if ft.is_symlink() {
                let target = std::fs::read_link(e.path())?;
                let t = fsx::cstr(target.as_os_str().as_bytes())?;
                match fsx::symlink_at(&t, &dir, &name) {
                    Ok(()) => {
                        let _ = owner.give_at(&dir, &name);
                    }
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(e),
                }
            } else if ft.is_file() {
                let mut file = match fsx::create_file_at(&dir, &name) {
                    Ok(file) => file,
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => continue,
                    Err(e) => return Err(e),
                };
                io::copy(&mut std::fs::File::open(e.path())?, &mut file)?;
                owner.give_fd(&file)?;
                file.set_permissions(std::fs::Permissions::from_mode(mode & 0o777))?;
            }
        }
    }
    Ok(())
}
