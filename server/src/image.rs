//! Images: the names a sandbox may ask for, and the read-only base they give it.
//!
//! There is one base, `tensorlake/ubuntu-minimal`, assembled from the host's own files rather
//! than downloaded: a directory `images/<name>-<version>/root` holding a small `/etc` (copied
//! from a list of the host's files, plus a generated `passwd`, `group`, `hosts`, `hostname`, an
//! empty `resolv.conf` to bind over, and a `pip.conf` that lets `pip` install as it does in the
//! cloud image), the usual top-level directories (`/data`, `/home`, `/root`, `/tmp`, `/var`,
//! ...) and the host's `/bin`, `/lib*` links; and `images/<name>-<version>/usr`, a small layer
//! over the host's `/usr` that adds `python` and `pip` where the host has only `python3` and
//! `pip3`. Building it copies about half a megabyte, in well under a second, once per data directory
//! and version (see the trade-off in the README: a `debootstrap` base would be Ubuntu's own
//! userland, at the price of minutes and hundreds of megabytes on the first start).
//!
//! The base is never written once built: each sandbox sees it through an overlay whose upper
//! layer is its own (see `isolation::layers`), or, without overlays, gets a copy of it.

use std::io;
use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Image a create request names when it names none.
pub const DEFAULT: &str = "tensorlake/ubuntu-minimal";

/// Names this server accepts; all give the same base.
pub const KNOWN: &[&str] = &[
    "tensorlake/ubuntu-minimal",
    "tensorlake/ubuntu-minimal:latest",
    "ubuntu-minimal",
];

/// Bumped whenever the base's contents change, so an older base in a data directory is not
/// used (it is left for live sandboxes that still have it as their lower layer).
const VERSION: &str = "v2";

/// Files and directories of the host's `/etc` copied into the base: what programs read at start
/// (the dynamic loader's cache, `alternatives` links into `/usr`, shell profiles, Python's own
/// settings, OpenSSL's configuration). Nothing secret: `shadow`, keys and the host's own
/// accounts are not in the list.
const ETC_COPIED: &[&str] = &[
    "alternatives",
    "bash.bashrc",
    "ca-certificates.conf",
    "debian_version",
    "environment",
    "gai.conf",
    "host.conf",
    "inputrc",
    "issue",
    "ld.so.cache",
    "ld.so.conf",
    "ld.so.conf.d",
    "localtime",
    "login.defs",
    "lsb-release",
    "magic",
    "mime.types",
    "nsswitch.conf",
    "os-release",
    "profile",
    "profile.d",
    "protocols",
    "python3",
    "python3.11",
    "python3.12",
    "python3.13",
    "services",
    "shells",
    "skel",
    "ssl/openssl.cnf",
    "timezone",
];

/// Top-level directories of the base, with their modes. `usr`, `proc`, `dev` and `sys` are
/// mount points; the rest is the sandbox's own.
const TOP_DIRS: &[(&str, u32)] = &[
    ("data", 0o755),
    ("dev", 0o755),
    ("etc", 0o755),
    ("home", 0o755),
    ("mnt", 0o755),
    ("opt", 0o755),
    ("proc", 0o555),
    ("root", 0o700),
    ("run", 0o755),
    ("srv", 0o755),
    ("sys", 0o555),
    ("tmp", 0o1777),
    ("usr", 0o755),
    ("var", 0o755),
    ("var/cache", 0o755),
    ("var/lib", 0o755),
    ("var/log", 0o755),
    ("var/tmp", 0o1777),
    ("etc/ssl", 0o755),
    ("etc/ssl/certs", 0o755),
];

const PASSWD: &str = "root:x:0:0:root:/root:/bin/bash\n\
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n\
user:x:1000:1000:user:/home/user:/bin/bash\n\
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
const GROUP: &str = "root:x:0:\ndaemon:x:1:\nusers:x:100:\nuser:x:1000:\nnogroup:x:65534:\n";
const HOSTS: &str = "127.0.0.1\tlocalhost sandbox\n::1\tlocalhost ip6-localhost ip6-loopback\n";
/// `pip` as in the cloud image: a root install goes to `/usr/local` without the PEP 668
/// refusal (the sandbox is the environment; there is no system Python to protect), and the
/// host's certificate store is trusted.
const PIP_CONF: &str = "[global]\nbreak-system-packages = true\nroot-user-action = ignore\n\
cert = /etc/ssl/certs/ca-certificates.crt\ndisable-pip-version-check = true\n";

/// Whether `name` is an image this server has; the error lists the ones it knows.
pub fn check(name: &str) -> Result<(), String> {
    if KNOWN.contains(&name) {
        Ok(())
    } else {
        Err(format!(
            "Unknown image {name:?}: tensorlake-local knows {}",
            KNOWN
                .iter()
                .map(|k| format!("{k:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ))
    }
}

/// A built base.
#[derive(Debug, Clone)]
pub struct Base {
    /// The sandbox's `/` below its own layer.
    pub root: PathBuf,
    /// What the base adds over the host's `/usr` (`python`, `pip`, `/usr/local` directories).
    pub usr: PathBuf,
    /// Directories of `/usr/local` a sandbox's root may write to (pip installs there).
    pub usr_writable: Vec<PathBuf>,
}

/// The base in `images_dir`, built first if this data directory has none of this version.
pub fn prepare(images_dir: &Path) -> io::Result<Base> {
    let dir = images_dir.join(format!("ubuntu-minimal-{VERSION}"));
    let usr_writable = usr_writable();
    if !dir.is_dir() {
        let tmp = images_dir.join(format!(".build-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&tmp);
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o755)
            .create(&tmp)?;
        build(&tmp, &usr_writable)?;
        std::fs::rename(&tmp, &dir)?;
    }
    Ok(Base {
        root: dir.join("root"),
        usr: dir.join("usr"),
        usr_writable,
    })
}

/// `/usr/local` and the directories below it that installs write to.
fn usr_writable() -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = [
        "local",
        "local/bin",
        "local/etc",
        "local/include",
        "local/lib",
        "local/sbin",
        "local/share",
        "local/src",
    ]
    .iter()
    .map(PathBuf::from)
    .collect();
    for py in python_versions() {
        v.push(PathBuf::from(format!("local/lib/{py}")));
        v.push(PathBuf::from(format!("local/lib/{py}/dist-packages")));
    }
    v
}

/// `python3.N` directories of the host's `/usr/lib`.
fn python_versions() -> Vec<String> {
    let Ok(rd) = std::fs::read_dir("/usr/lib") else {
        return Vec::new();
    };
    let mut v: Vec<String> = rd
        .flatten()
        .filter_map(|e| e.file_name().into_string().ok())
        .filter(|n| {
            n.strip_prefix("python3.")
                .is_some_and(|r| !r.is_empty() && r.bytes().all(|b| b.is_ascii_digit()))
        })
        .collect();
    v.sort();
    v
}

fn mkdir(p: &Path, mode: u32) -> io::Result<()> {
    std::fs::DirBuilder::new().recursive(true).create(p)?;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode))
}

fn build(dir: &Path, usr_writable: &[PathBuf]) -> io::Result<()> {
    let root = dir.join("root");
    mkdir(&root, 0o755)?;
    for (d, mode) in TOP_DIRS {
        mkdir(&root.join(d), *mode)?;
    }
    for name in ["bin", "sbin", "lib", "lib64", "lib32", "libx32"] {
        let host = Path::new("/").join(name);
        if let Ok(target) = std::fs::read_link(&host) {
            std::os::unix::fs::symlink(target, root.join(name))?;
        }
    }
    for name in ETC_COPIED {
        let from = Path::new("/etc").join(name);
        if std::fs::symlink_metadata(&from).is_ok() {
            copy_tree(&from, &root.join("etc").join(name))?;
        }
    }
    for (name, text) in [
        ("passwd", PASSWD),
        ("group", GROUP),
        ("hosts", HOSTS),
        ("hostname", "sandbox\n"),
        ("resolv.conf", ""),
        ("pip.conf", PIP_CONF),
    ] {
        let path = root.join("etc").join(name);
        std::fs::write(&path, text)?;
        // The server's umask is 077; the base is read by every sandbox's uid.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644))?;
    }
    mkdir(&root.join("home/user"), 0o755)?;
    writable_by_all(&root.join("etc"))?;

    let usr = dir.join("usr");
    mkdir(&usr.join("bin"), 0o755)?;
    for (alias, target) in [("python", "python3"), ("pip", "pip3")] {
        let host = Path::new("/usr/bin");
        if std::fs::symlink_metadata(host.join(alias)).is_err() && host.join(target).exists() {
            std::os::unix::fs::symlink(target, usr.join("bin").join(alias))?;
        }
    }
    for d in usr_writable {
        mkdir(&usr.join(d), 0o755)?;
    }
    Ok(())
}

/// Makes the regular files under `dir` writable by anyone. The base is only ever seen through
/// a sandbox's overlay, whose writes are copied up into the sandbox's own layer; and a
/// sandbox's root is an unprivileged host uid, which could otherwise not change a file of the
/// base as root can in a cloud sandbox (`echo ... > /etc/hostname`).
fn writable_by_all(dir: &Path) -> io::Result<()> {
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let ft = e.file_type()?;
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                let mode = e.metadata()?.permissions().mode() & 0o777;
                std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(mode | 0o666))?;
            }
        }
    }
    Ok(())
}

/// Copies the host tree at `from` (trusted: the host's `/etc`) to `to`, links as links, only
/// directories, regular files and links, files readable by anyone only.
fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    let mut stack = vec![(from.to_path_buf(), to.to_path_buf())];
    while let Some((src, dst)) = stack.pop() {
        let meta = std::fs::symlink_metadata(&src)?;
        let ft = meta.file_type();
        if let Some(parent) = dst.parent() {
            std::fs::create_dir_all(parent)?;
        }
        if ft.is_symlink() {
            std::os::unix::fs::symlink(std::fs::read_link(&src)?, &dst)?;
        } else if ft.is_dir() {
            mkdir(&dst, meta.permissions().mode() & 0o755)?;
            for e in std::fs::read_dir(&src)? {
                let e = e?;
                stack.push((e.path(), dst.join(e.file_name())));
            }
        } else if ft.is_file() && meta.permissions().mode() & 0o004 != 0 {
            std::fs::copy(&src, &dst)?;
            std::fs::set_permissions(
                &dst,
                std::fs::Permissions::from_mode(meta.permissions().mode() & 0o755),
            )?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_names_are_refused_with_the_known_ones() {
        assert!(check(DEFAULT).is_ok());
        let e = check("python:3.12").unwrap_err();
        assert!(e.contains("python:3.12") && e.contains(DEFAULT), "{e}");
    }

    #[test]
    fn the_base_has_etc_data_home_and_pip_settings() {
        let d = std::env::temp_dir().join(format!("image-{}", crate::model::new_id("")));
        let base = prepare(&d).unwrap();
        for p in ["etc/passwd", "etc/pip.conf", "data", "home", "tmp", "etc/ssl/certs"] {
            assert!(base.root.join(p).exists(), "{p}");
        }
        assert!(!base.root.join("etc/shadow").exists());
        let again = prepare(&d).unwrap();
        assert_eq!(again.root, base.root);
        std::fs::remove_dir_all(&d).unwrap();
    }
}
