//! bubblewrap: finding it, checking that it can build a sandbox on this machine, and the exact
//! jail a command runs in.
//!
//! The jail: the sandbox's root directory as `/` (read-write), the host's `/usr` read-only (with
//! the `/bin`, `/sbin`, `/lib*` links or directories the host has), a private `/proc` and `/dev`,
//! new user, PID, IPC, UTS and cgroup namespaces, the sandbox's own network namespace (see
//! `isolation::netns`; a new one with loopback only on a server without networking), the host's
//! CA store and a generated resolv.conf read-only under `/etc`, every capability dropped, a new
//! session (no terminal injection), a clean environment, and `--die-with-parent` so nothing
//! outlives the server. `/tmp` is the sandbox's own directory.
//! `/proc/sys`, `/proc/sysrq-trigger`, `/proc/irq` and `/proc/bus` are read-only.
//!
//! Before bwrap runs, the forked child joins the sandbox's cgroups, sets umask 022 and, when the
//! server is root, becomes the sandbox's own unprivileged uid (see `isolation`); bwrap then maps
//! uid 0 inside to it. The sandbox's uid has no access to the (private) data directory, and
//! bwrap 0.8 resolves even a `--bind-fd` source through its path, so as root the child first
//! enters a mount namespace of its own and binds the root onto [`STAGING`],
//! which bwrap binds as `/`. A server run as a normal user passes the root as `--bind-fd`. The
//! seccomp programs arrive as descriptors.

use std::ffi::OsString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::isolation::child::{enter, STAGING};
use crate::isolation::netns::RESOLV_CONF;
use crate::isolation::{dir_hash, seccomp, Isolation};

/// Environment variable naming the bwrap binary (default: `bwrap` on `PATH`).
pub const BWRAP_ENV: &str = "TENSORLAKE_LOCAL_BWRAP";

/// `PATH` inside a sandbox.
pub const SANDBOX_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Top-level names the jail mounts or links over the sandbox root. They are not the sandbox's
/// own files: archives skip them and the file API refuses to write under them.
pub const SYSTEM_DIRS: &[&str] = &[
    "usr", "bin", "sbin", "lib", "lib64", "lib32", "libx32", "proc", "dev",
];

/// Host directories that are links into `/usr` on merged-usr systems, or real directories on
/// older ones; mirrored into the jail either way.
const HOST_LINKS: &[&str] = &["bin", "sbin", "lib", "lib64", "lib32", "libx32"];

/// The host's certificate store, bound read-only into every jail.
const HOST_CERTS: &str = "/etc/ssl/certs";

/// Parts of `/proc` that reach host kernel settings; read-only in the jail. Only `sys` is
/// required to exist.
const PROC_READ_ONLY: &[&str] = &["sys", "sysrq-trigger", "irq", "bus"];

/// Start of the `argv[0]` each jail's bwrap gets, followed by a hash of the sandboxes directory
/// and the sandbox id: how [`kill_orphans`] recognises jails of this data directory (the root is
/// passed as a descriptor, so no argument names it). A hash rather than the path, since a jail
/// sees its bwrap's command line as `/proc/1/cmdline`.
const ARGV0_MARKER: &str = "bwrap:";

/// What to run.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Program (looked up on the sandbox `PATH`; not run through a shell).
    pub command: String,
    /// Arguments.
    pub args: Vec<String>,
    /// Extra environment.
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox.
    pub working_dir: String,
    /// Keep the command's stdin open as a pipe (`stdin_mode: "pipe"`) rather than `/dev/null`.
    pub stdin_pipe: bool,
    /// Uid and gid inside the sandbox (`user`); `None` is root (0:0). Either way it maps to the
    /// sandbox's one host uid: bwrap maps exactly one uid into the user namespace.
    pub user: Option<(u32, u32)>,
}

/// The bwrap launcher.
pub struct Jail {
    configured: Option<PathBuf>,
    /// Last check: Ok(path) once bwrap is known to work (then never re-checked), or the error and
    /// when it was seen (re-checked after a short while, so installing bwrap needs no restart).
    checked: Mutex<Option<(Result<PathBuf, String>, Instant)>>,
    spawner: std::sync::mpsc::Sender<SpawnJob>,
    /// Uids, cgroups, disk and seccomp of the sandboxes.
    pub iso: Isolation,
}

type SpawnJob = (
    tokio::process::Command,
    oneshot::Sender<io::Result<tokio::process::Child>>,
);

impl Jail {
    /// A launcher reading [`BWRAP_ENV`]. Must be called inside the tokio runtime: it starts the
    /// spawner thread there.
    pub fn new(iso: Isolation) -> Jail {
        let configured = std::env::var_os(BWRAP_ENV)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from);
        // bwrap's --die-with-parent is PR_SET_PDEATHSIG, which fires when the *thread* that forked
        // bwrap exits. Tokio's blocking threads come and go, so every bwrap is forked by this one
        // thread, which lives as long as the process.
        let (tx, rx) = std::sync::mpsc::channel::<SpawnJob>();
        let handle = tokio::runtime::Handle::current();
        std::thread::Builder::new()
            .name("bwrap-spawner".into())
            .spawn(move || {
                let _rt = handle.enter();
                for (mut cmd, reply) in rx {
                    let _ = reply.send(cmd.spawn());
                }
            })
            .expect("cannot start the bwrap spawner thread");
        Jail {
            configured,
            checked: Mutex::new(None),
            spawner: tx,
            iso,
        }
    }

    /// The bwrap binary, once it is known to work here; otherwise a message for the 503.
    pub async fn ready(&self) -> Result<PathBuf, String> {
        {
            let checked = self.checked.lock().unwrap_or_else(|p| p.into_inner());
            match &*checked {
                Some((Ok(p), _)) => return Ok(p.clone()),
                Some((Err(e), at)) if at.elapsed() < Duration::from_secs(2) => {
                    return Err(e.clone())
                }
                _ => {}
            }
        }
        let configured = self.configured.clone();
        let result = tokio::task::spawn_blocking(move || check(configured))
            .await
            .unwrap_or_else(|e| Err(format!("bubblewrap check failed: {e}")));
        *self.checked.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((result.clone(), Instant::now()));
        result
    }

    /// Starts `spec` in the jail of sandbox `sandbox_id`, rooted at `root`, with piped
    /// stdout/stderr.
    pub async fn spawn(
        &self,
        bwrap: &Path,
        root: &Path,
        spec: &RunSpec,
        sandbox_id: &str,
    ) -> io::Result<tokio::process::Child> {
        let setup = self.iso.jail(sandbox_id)?;
        // Opened here, close-on-exec, and made inheritable only in the child: no other process
        // forked meanwhile gets them.
        let root_fd = crate::fsx::open_dir(root)?;
        let filters = match self.iso.seccomp() {
            Some(progs) => progs
                .iter()
                .map(|p| seccomp::memfd_with(p))
                .collect::<io::Result<Vec<OwnedFd>>>()?,
            None => Vec::new(),
        };
        let filter_fds: Vec<RawFd> = filters.iter().map(|f| f.as_raw_fd()).collect();
        let staged = setup.ids.is_some();
        // The sandbox's own network namespace: its resolv.conf arrives as a descriptor, since
        // bwrap, already the sandbox's uid, could not read a file in the private data directory.
        let net_ns = self.net_namespace(sandbox_id).await?;
        let netns = net_ns.as_ref().map(|ns| ns.as_raw_fd());
        let resolv = netns
            .map(|_| seccomp::memfd_with(RESOLV_CONF.as_bytes()))
            .transpose()?;
        let fds = JailFds {
            root: (!staged).then(|| root_fd.as_raw_fd()),
            seccomp: &filter_fds,
            resolv: resolv.as_ref().map(|f| f.as_raw_fd()),
            own_usr: setup.own_usr,
        };
        // By path: after the child's unshare, the descriptor belongs to another mount namespace,
        // which a bind mount refuses. The path is the server's own (`sandboxes/<id>/root`).
        let stage_from = staged
            .then(|| std::ffi::CString::new(root.as_os_str().as_encoded_bytes()))
            .transpose()
            .map_err(io::Error::other)?;
        let mut cmd = tokio::process::Command::new(bwrap);
        cmd.arg0(argv0(root))
            .args(jail_args(root, spec, &fds))
            .env_clear()
            .stdin(if spec.stdin_pipe {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // A staged root stays close-on-exec: bwrap must not pass a descriptor of a host
        // directory on to the sandbox, where `openat(fd, "..")` would lead outside.
        let mut inherit = filter_fds.clone();
        inherit.extend(fds.root);
        inherit.extend(fds.resolv);
        // SAFETY: the hook only calls async-signal-safe functions (open, write, close, fcntl,
        // umask, setgroups, setgid, setuid) on data prepared before the fork.
        unsafe {
            cmd.pre_exec(move || enter(&setup, netns, stage_from.as_deref(), &inherit));
        }
        let (tx, rx) = oneshot::channel();
        self.spawner
            .send((cmd, tx))
            .map_err(|_| io::Error::other("the bwrap spawner thread has stopped"))?;
        let child = rx
            .await
            .map_err(|_| io::Error::other("the bwrap spawner thread has stopped"))?;
        // The child has its copies now (or failed); the server's are closed here.
        drop(filters);
        drop(resolv);
        drop(net_ns);
        drop(root_fd);
        child
    }
}

impl Jail {
    /// Sandbox `id`'s network namespace (made at its first command; see `netns`), after the
    /// host's addresses are checked for changes its rules must follow.
    async fn net_namespace(&self, id: &str) -> io::Result<Option<Arc<OwnedFd>>> {
        if !self.iso.net.available() {
            return Ok(None);
        }
        let (net, id) = (self.iso.net.clone(), id.to_string());
        tokio::task::spawn_blocking(move || {
            net.refresh_host();
            net.enter(&id)
        })
        .await
        .map_err(io::Error::other)?
    }
}

/// `argv[0]` of the jail rooted at `root` (`<sandboxes>/<id>/root`); see [`ARGV0_MARKER`].
fn argv0(root: &Path) -> String {
    let sandbox_dir = root.parent().unwrap_or(root);
    let sandboxes = sandbox_dir.parent().unwrap_or(sandbox_dir);
    let id = sandbox_dir
        .file_name()
        .unwrap_or_default()
        .to_string_lossy();
    format!("{ARGV0_MARKER}{}:{id}", dir_hash(sandboxes))
}

/// Descriptors a jail's bwrap reads: the sandbox root and the seccomp programs.
pub struct JailFds<'a> {
    /// Directory bound as `/`, or `None` when it is staged at [`STAGING`] (server run as root).
    pub root: Option<RawFd>,
    /// One per seccomp program.
    pub seccomp: &'a [RawFd],
    /// `/etc/resolv.conf`, when the jail keeps the sandbox's network namespace (`--share-net`)
    /// rather than getting one with loopback only.
    pub resolv: Option<RawFd>,
    /// The root brings its own `/usr` (a layer over the host's, see `isolation::layers`).
    pub own_usr: bool,
}

/// Kills bwrap processes left running by an earlier server on this data directory.
///
/// bwrap arms its parent-death signal in each of its processes a moment after they start; a
/// server killed inside that window leaves a jail running. Such a jail is recognised by its
/// `argv[0]` ([`ARGV0_MARKER`] and the hash of `sandboxes_dir`), or, from servers before uid mapping, by
/// its `--bind <sandboxes_dir>/...` argument; since the caller holds the data directory's lock,
/// no live server owns it. Returns how many were killed.
pub fn kill_orphans(sandboxes_dir: &Path) -> usize {
    let prefix = sandboxes_dir.as_os_str().as_encoded_bytes().to_vec();
    let marker = format!("{ARGV0_MARKER}{}:", dir_hash(sandboxes_dir));
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return 0;
    };
    let mut killed = 0;
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let argv: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
        let under =
            |p: &[u8]| p.len() > prefix.len() && p.starts_with(&prefix) && p[prefix.len()] == b'/';
        let first = argv.first().copied().unwrap_or_default();
        let marked = first.starts_with(marker.as_bytes());
        let old_style =
            first.ends_with(b"bwrap") && argv.windows(2).any(|w| w[0] == b"--bind" && under(w[1]));
        // SAFETY: kill(2) on a pid read from /proc; at worst the process is already gone.
        if (marked || old_style) && unsafe { libc::kill(pid, libc::SIGKILL) } == 0 {
            killed += 1;
        }
    }
    killed
}

/// Finds bwrap and runs a trivial jail with it, so a machine where namespaces are forbidden is
/// reported as clearly as a missing binary.
fn check(configured: Option<PathBuf>) -> Result<PathBuf, String> {
    let path = match configured {
        Some(p) if p.is_file() => p,
        Some(p) => {
            return Err(format!(
                "bubblewrap is missing: {BWRAP_ENV} points to {}, which does not exist. Process and file \
                 routes need bubblewrap (Debian/Ubuntu: apt-get install bubblewrap)",
                p.display()
            ))
        }
        None => find_on_path("bwrap").ok_or_else(|| {
            "bubblewrap is missing: no `bwrap` on PATH. Process and file routes need bubblewrap \
             (Debian/Ubuntu: apt-get install bubblewrap, or set TENSORLAKE_LOCAL_BWRAP)"
                .to_string()
        })?,
    };
    let mut probe: Vec<OsString> = [
        "--die-with-parent",
        "--unshare-all",
        "--unshare-user",
        "--cap-drop",
        "ALL",
        "--ro-bind",
        "/usr",
        "/usr",
    ]
    .iter()
    .map(OsString::from)
    .collect();
    // The probe's root is bwrap's own empty tmpfs, so the host links are always created.
    probe.extend(host_link_args(None));
    probe.extend(
        ["--proc", "/proc", "--dev", "/dev", "--", "/usr/bin/true"]
            .iter()
            .map(OsString::from),
    );
    let out = std::process::Command::new(&path)
        .args(&probe)
        .env_clear()
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("bubblewrap at {} cannot be run: {e}", path.display()))?;
    if !out.status.success() {
        return Err(format!(
            "bubblewrap at {} cannot create a sandbox on this machine ({}): {}",
            path.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    Ok(path)
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path =
        std::env::var_os("PATH").unwrap_or_else(|| OsString::from("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Arguments mirroring the host's `/bin`, `/sbin` and `/lib*` into the jail: links into `/usr`
/// on merged-usr systems, read-only binds of real directories otherwise. With a sandbox `root`,
/// a link is only created where the root has nothing yet (bwrap 0.8 refuses to create a link
/// over one left by an earlier run).
fn host_link_args(root: Option<&Path>) -> Vec<OsString> {
    let mut a = Vec::new();
    for name in HOST_LINKS {
        let host = Path::new("/").join(name);
        let Ok(meta) = std::fs::symlink_metadata(&host) else {
            continue;
        };
        let dest = format!("/{name}");
        if meta.file_type().is_symlink() {
            let exists = root.is_some_and(|r| std::fs::symlink_metadata(r.join(name)).is_ok());
            if !exists {
                if let Ok(target) = std::fs::read_link(&host) {
                    a.push("--symlink".into());
                    a.push(target.into_os_string());
                    a.push(dest.into());
                }
            }
        } else if meta.is_dir() {
            a.push("--ro-bind".into());
            a.push(host.into_os_string());
            a.push(dest.into());
        }
    }
    a
}

/// The bwrap command line (after `argv[0]`) for `spec` in the jail rooted at `root`, which bwrap
/// gets as the descriptor `fds.root` or at [`STAGING`].
pub fn jail_args(root: &Path, spec: &RunSpec, fds: &JailFds) -> Vec<OsString> {
    fn push(a: &mut Vec<OsString>, items: &[&str]) {
        a.extend(items.iter().map(OsString::from));
    }
    let mut a: Vec<OsString> = Vec::with_capacity(48 + spec.args.len() + 3 * spec.env.len());
    let (uid, gid) = spec.user.unwrap_or((0, 0));
    push(
        &mut a,
        &[
            "--die-with-parent",
            "--new-session",
            "--unshare-all",
            "--unshare-user",
            "--uid",
            &uid.to_string(),
            "--gid",
            &gid.to_string(),
            "--cap-drop",
            "ALL",
        ],
    );
    if fds.resolv.is_some() {
        push(&mut a, &["--share-net"]);
    }
    push(&mut a, &["--hostname", "sandbox"]);
    match fds.root {
        Some(fd) => push(&mut a, &["--bind-fd", &fd.to_string(), "/"]),
        None => push(&mut a, &["--bind", STAGING, "/"]),
    }
    if !fds.own_usr {
        push(&mut a, &["--ro-bind", "/usr", "/usr"]);
    }
    a.extend(host_link_args(Some(root)));
    // The host's certificate store, read-only: registries may be reached through a CA that only
    // the host trusts (a corporate proxy), as Docker Desktop does.
    push(&mut a, &["--ro-bind-try", HOST_CERTS, HOST_CERTS]);
    if let Some(fd) = fds.resolv {
        push(&mut a, &["--ro-bind-data", &fd.to_string(), "/etc/resolv.conf"]);
    }
    push(&mut a, &["--proc", "/proc", "--dev", "/dev"]);
    for name in PROC_READ_ONLY {
        let p = format!("/proc/{name}");
        let how = if *name == "sys" {
            "--ro-bind"
        } else {
            "--ro-bind-try"
        };
        push(&mut a, &[how, &p, &p]);
    }
    for fd in fds.seccomp {
        push(&mut a, &["--add-seccomp-fd", &fd.to_string()]);
    }
    push(&mut a, &["--chdir", &spec.working_dir]);
    push(
        &mut a,
        &[
            "--setenv",
            "PATH",
            SANDBOX_PATH,
            "--setenv",
            "HOME",
            "/root",
            "--setenv",
            "LANG",
            "C.UTF-8",
        ],
    );
    for (k, v) in &spec.env {
        push(&mut a, &["--setenv", k, v]);
    }
    push(&mut a, &["--", &spec.command]);
    a.extend(spec.args.iter().map(OsString::from));
    a
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jail_binds_the_root_and_drops_everything() {
        let spec = RunSpec {
            command: "sh".into(),
            args: vec!["-c".into(), "echo hi".into()],
            env: vec![("A".into(), "b".into())],
            working_dir: "/".into(),
            stdin_pipe: false,
            user: None,
        };
        let fds = JailFds {
            root: Some(7),
            seccomp: &[8, 9],
            resolv: None,
            own_usr: false,
        };
        let args: Vec<String> = jail_args(Path::new("/data/sb/root"), &spec, &fds)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let joined = args.join(" ");
        assert!(joined.contains("--bind-fd 7 /"), "{joined}");
        assert!(joined.contains("--uid 0 --gid 0"), "{joined}");
        assert!(joined.contains("--ro-bind /proc/sys /proc/sys"), "{joined}");
        assert!(
            joined.contains("--add-seccomp-fd 8 --add-seccomp-fd 9"),
            "{joined}"
        );
        assert!(joined.contains("--ro-bind /usr /usr"));
        assert!(joined.contains("--unshare-all"));
        assert!(joined.contains("--cap-drop ALL"));
        assert!(joined.contains("--die-with-parent"));
        assert!(joined.ends_with("-- sh -c echo hi"), "{joined}");
        assert!(!joined.contains("--share-net"), "{joined}");
        assert!(joined.contains("--setenv A b"));
    }

    #[test]
    fn a_user_becomes_the_mapped_uid_and_gid() {
        let spec = RunSpec {
            command: "id".into(),
            args: vec![],
            env: vec![],
            working_dir: "/".into(),
            stdin_pipe: true,
            user: Some((1000, 100)),
        };
        let fds = JailFds {
            root: Some(7),
            seccomp: &[],
            resolv: Some(5),
            own_usr: true,
        };
        let joined: Vec<String> = jail_args(Path::new("/data/sb/root"), &spec, &fds)
            .into_iter()
            .map(|s| s.into_string().unwrap())
            .collect();
        let joined = joined.join(" ");
        assert!(joined.contains("--uid 1000 --gid 100"), "{joined}");
        assert!(!joined.contains("--ro-bind /usr /usr"), "{joined}");
        assert!(joined.contains("--ro-bind-try /etc/ssl/certs /etc/ssl/certs"), "{joined}");
        assert!(joined.contains("--cap-drop ALL"), "{joined}");
        assert!(joined.contains("ALL --share-net"), "{joined}");
        assert!(joined.contains("--ro-bind-data 5 /etc/resolv.conf"), "{joined}");
    }
}
