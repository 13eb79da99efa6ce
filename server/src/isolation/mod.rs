//! What keeps a sandbox inside its walls beyond bubblewrap's namespaces: a host uid of its own
//! (when the server runs as root), a seccomp filter, cgroup limits (memory, CPU, pids) and a
//! filesystem of its own size. Each part is checked at start-up; what cannot work on this machine
//! is reported on stderr (see [`Isolation::summary`]) and the server keeps working without it.
//!
//! When the server runs as root, uid 0 inside a sandbox is one unprivileged host uid from
//! [`uids::UID_BASE`], unique among live sandboxes, and the sandbox's files are owned by it: a
//! setuid file made inside is setuid to that uid, never to root. The uid is the owner of the
//! sandbox's root directory, so it survives restarts without being stored. When the server runs
//! as a normal user, sandboxes run as that user (uid 0 inside maps to it).

pub mod cgroups;
pub mod child;
pub mod disk;
pub mod layers;
pub mod netns;
pub mod reaper;
pub mod seccomp;
pub mod slirp;
pub mod uids;

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::model::{Sandbox, Stage};
use crate::state::{Paths, Registry};
use cgroups::{Cgroups, Limits};
use disk::Disk;
use layers::Layers;
use uids::UidPool;

/// What a jailed process of one sandbox is set up with before it runs.
#[derive(Debug, Default)]
pub struct SandboxJail {
    /// Host uid and gid to become (server run as root), or `None` to keep the server's.
    pub ids: Option<(u32, u32)>,
    /// `cgroup.procs` files to join, as C strings so the pre-exec hook allocates nothing.
    pub cgroup_procs: Vec<CString>,
    /// The root has its own `/usr` (a layer over the host's): the jail must not bind the
    /// host's over it.
    pub own_usr: bool,
}

/// The isolation features of this server and the state of each live sandbox.
pub struct Isolation {
    as_root: bool,
    uids: UidPool,
    cgroups: Cgroups,
    disk: Option<Disk>,
    layers: Option<Layers>,
    base: Option<crate::image::Base>,
    seccomp: Option<Vec<Vec<u8>>>,
    max_pids: u64,
    notes: Vec<String>,
    sandboxes_dir: PathBuf,
    live: Mutex<HashMap<String, Arc<SandboxJail>>>,
    /// Network namespaces, their firewall and slirp4netns.
    pub net: Arc<netns::Network>,
    /// Pipe to the clean-up process; never written, only held (see `reaper.rs`).
    reaper: Mutex<Option<std::process::ChildStdin>>,
}

/// Stable (FNV-1a) hash of a directory path: names this server's cgroup parent (from the data
/// directory) and marks its jails (from the sandboxes directory) without showing the path.
pub fn dir_hash(p: &Path) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in p.as_os_str().as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{h:016x}")
}

impl Isolation {
    /// Checks what this machine allows and removes what a crashed server left mounted. Call
    /// with the data directory locked and before `state::recover` (which deletes dead trees).
    pub fn start(paths: &Paths, max_pids: u64) -> Isolation {
        // SAFETY: geteuid cannot fail.
        let as_root = unsafe { libc::geteuid() } == 0;
        let mut notes = Vec::new();
        if as_root {
            notes.push(format!(
                "uid mapping: on (uid 0 in each sandbox is its own host uid from {}..{})",
                uids::UID_BASE,
                uids::UID_BASE + uids::UID_COUNT - 1
            ));
        } else {
            // SAFETY: getuid cannot fail.
            let uid = unsafe { libc::getuid() };
            notes.push(format!(
                "uid mapping: sandboxes run as this server's user (uid {uid}); run as root for one unprivileged uid per sandbox"
            ));
        }
        let seccomp = match seccomp::programs() {
            Ok(p) => {
                notes.push("seccomp: on (keyctl, bpf, perf_event_open, mount, new namespaces, modules, kexec, ... refused)".into());
                Some(p)
            }
            Err(e) => {
                notes.push(format!("seccomp: NOT enforced: {e}"));
                None
            }
        };
        let (cgroups, problems) =
            Cgroups::detect(&format!("tensorlake-local-{}", dir_hash(&paths.data)));
        let on = cgroups.enforced();
        for (ctrl, what) in [
            ("memory", "memory_mb"),
            ("cpu", "cpus"),
            ("pids", "--max-pids-per-sandbox"),
        ] {
            if on.contains(&ctrl) {
                notes.push(format!(
                    "cgroup {ctrl} ({}): on, enforces {what}",
                    cgroups.version()
                ));
            } else {
                let why = problems
                    .iter()
                    .find(|(c, _)| *c == ctrl)
                    .map(|(_, why)| why.as_str())
                    .unwrap_or("unavailable");
                let hint = if as_root {
                    ""
                } else {
                    "; run the server as root"
                };
                notes.push(format!("cgroup {ctrl}: {what} NOT enforced: {why}{hint}"));
            }
        }
        notes.push(if cgroups.can_freeze() {
            format!(
                "suspend: cgroup freezer ({}) freezes a suspended sandbox's processes",
                cgroups.version()
            )
        } else {
            "suspend: no cgroup freezer here; a suspended sandbox's processes are stopped with SIGSTOP (and see SIGCONT on resume)".into()
        });
        disk::unmount_under(&paths.sandboxes);
        let disk = if as_root {
            match Disk::detect(&paths.tmp, &paths.data) {
                Ok(d) => {
                    notes.push(
                        "disk: on (disk_mb is a per-sandbox ext4 filesystem, nosuid,nodev)".into(),
                    );
                    Some(d)
                }
                Err(e) => {
                    notes.push(format!("disk: disk_mb NOT enforced: {e}"));
                    None
                }
            }
        } else {
            notes.push(
                "disk: disk_mb NOT enforced: a filesystem per sandbox needs root (mount, loop devices)".into(),
            );
            None
        };
        let net = Arc::new(netns::Network::detect(as_root, paths.data.join("slirp-etc")));
        notes.push(net.summary());
        let (base, layers) = image_layers(paths, as_root, &mut notes);
        Isolation {
            as_root,
            uids: UidPool::default(),
            cgroups,
            disk,
            layers,
            base,
            seccomp,
            max_pids,
            notes,
            sandboxes_dir: paths.sandboxes.clone(),
            live: Mutex::new(HashMap::new()),
            net,
            reaper: Mutex::new(None),
        }
    }

    /// One line per feature: on, or not enforced and why.
    pub fn summary(&self) -> &[String] {
        &self.notes
    }

    /// Freezes (or thaws) every process of sandbox `id` with the cgroup freezer. `Ok(false)`
    /// when there is no freezer here: the caller stops the processes with SIGSTOP instead.
    /// Blocking.
    pub fn freeze(&self, id: &str, frozen: bool) -> io::Result<bool> {
        if !self.cgroups.can_freeze() {
            return Ok(false);
        }
        self.cgroups.freeze(id, frozen).map(|()| true)
    }

    /// The compiled seccomp programs, when the filter is on.
    pub fn seccomp(&self) -> Option<&[Vec<u8>]> {
        self.seccomp.as_deref()
    }

    /// Starts the process that undoes mounts and cgroups once the server is gone (only when there
    /// is something to undo). `lock_fd` is the data directory's lock.
    pub fn start_reaper(&self, lock_fd: std::os::fd::RawFd) -> Result<(), String> {
        let parents = self.cgroups.parents();
        let mounts_any = self.disk.is_some() || self.layers.is_some();
        if !mounts_any && parents.is_empty() {
            return Ok(());
        }
        let mounts = mounts_any.then_some(self.sandboxes_dir.as_path());
        let pipe = reaper::spawn(mounts, &parents, lock_fd)
            .map_err(|e| format!("cannot start the clean-up process: {e}"))?;
        *self.reaper.lock().unwrap_or_else(|p| p.into_inner()) = Some(pipe);
        Ok(())
    }

    fn limits(&self, sb: &Sandbox) -> Limits {
        Limits {
            memory_mb: sb.memory_mb,
            cpus: sb.cpus,
            pids: self.max_pids,
        }
    }

    /// Sets up a new sandbox whose (empty) root directory is `root`: its uid, its filesystem,
    /// its cgroups. Must run before anything is created inside `root`, which it leaves owned by
    /// the sandbox's uid. Blocking.
    pub fn prepare(&self, sb: &Sandbox, root: &Path) -> io::Result<()> {
        let ids = if self.as_root {
            let uid = self.uids.allocate().ok_or_else(|| {
                // QuotaExceeded: the route answers 503, as for any capacity limit of this machine.
                io::Error::new(
                    io::ErrorKind::QuotaExceeded,
                    format!("all {} sandbox uids are in use; delete a sandbox first", uids::UID_COUNT),
                )
            })?;
            Some((uid, uid))
        } else {
            None
        };
        let result = self.prepare_with(sb, root, ids);
        if result.is_err() {
            self.release(&sb.id, root);
            if let Some((uid, _)) = ids {
                self.uids.release(uid);
            }
        }
        result
    }

    fn prepare_with(&self, sb: &Sandbox, root: &Path, ids: Option<(u32, u32)>) -> io::Result<()> {
        let sandbox_dir = root.parent().unwrap_or(root);
        match (&self.layers, &self.disk, ids) {
            (Some(l), disk, Some(owner)) => {
                let layer = layers::layer_dir(sandbox_dir);
                std::fs::create_dir_all(&layer)?;
                if let Some(disk) = disk {
                    // Owned by root: the sandbox reaches its layer only through the overlay.
                    disk.create(sandbox_dir, &layer, sb.disk_mb, (0, 0))?;
                }
                l.make_upper(&layer, owner)?;
            }
            (None, Some(disk), Some(owner)) => disk.create(sandbox_dir, root, sb.disk_mb, owner)?,
            (None, None, Some((uid, gid))) => {
                std::os::unix::fs::chown(root, Some(uid), Some(gid))?
            }
            _ => {}
        }
        self.register(sb, ids, self.layers.is_some())
    }

    /// Where a new sandbox's own files go (a restore unpacks there) and what a snapshot
    /// archives: its upper layer with layers, else its root. The flag says which.
    pub fn own_files(&self, root: &Path) -> (PathBuf, bool) {
        let upper = layers::upper_dir(root.parent().unwrap_or(root));
        // Per sandbox: one made by a server without layers keeps its plain root.
        if self.layers.is_some() && upper.is_dir() {
            (upper, true)
        } else {
            (root.to_path_buf(), false)
        }
    }

    /// Completes a new sandbox once its own files are in place: the directories it may write
    /// to, and its overlays mounted on `root`; without layers, a copy of the image base where
    /// the root has nothing yet. Blocking.
    pub fn finish(&self, root: &Path) -> io::Result<()> {
        let sandbox_dir = root.parent().unwrap_or(root);
        if let Some(l) = &self.layers {
            let upper = crate::fsx::open_dir(&layers::upper_dir(sandbox_dir))?;
            l.fill_upper(&upper)?;
            return l.mount(&layers::layer_dir(sandbox_dir), root);
        }
        if let Some(base) = &self.base {
            layers::copy_missing(&base.root, &crate::fsx::open_dir(root)?)?;
        }
        Ok(())
    }

    fn register(&self, sb: &Sandbox, ids: Option<(u32, u32)>, own_usr: bool) -> io::Result<()> {
        let procs = if self.cgroups.enforced().is_empty() {
            Vec::new()
        } else {
            self.cgroups.create(&sb.id, self.limits(sb))?
        };
        let cgroup_procs = procs
            .iter()
            .map(|p| CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other))
            .collect::<io::Result<Vec<_>>>()?;
        let policy = crate::netpolicy::NetPolicy::from_stored(sb.network.as_ref());
        let net_cgroups = if self.cgroups.enforced().is_empty() {
            Vec::new()
        } else {
            self.cgroups
                .limit_procs(&sb.id)
                .iter()
                .map(|p| CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other))
                .collect::<io::Result<Vec<_>>>()?
        };
        self.net
            .register(&sb.id, &policy, sb.stage == Stage::Active, net_cgroups);
        self.live.lock().unwrap_or_else(|p| p.into_inner()).insert(
            sb.id.clone(),
            Arc::new(SandboxJail {
                ids,
                cgroup_procs,
                own_usr,
            }),
        );
        Ok(())
    }

    /// Undoes [`Isolation::prepare`] for sandbox `id` (deleted, or failed to be created): kills
    /// what still runs in its cgroups, removes them, unmounts its filesystem and frees its uid.
    /// The directory itself is the caller's to remove. Blocking.
    pub fn release(&self, id: &str, root: &Path) {
        let jail = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        self.net.release(id);
        if !self.cgroups.enforced().is_empty() {
            self.cgroups.remove(id);
        }
        let layer = layers::layer_dir(root.parent().unwrap_or(root));
        if let Some(l) = &self.layers {
            let _ = l.unmount(&layer, root);
            if self.disk.is_some() {
                let _ = disk::unmount(&layer);
            }
        } else if self.disk.is_some() {
            let _ = disk::unmount(root);
        }
        if let Some((uid, _)) = jail.and_then(|j| j.ids) {
            self.uids.release(uid);
        }
    }

    /// Brings the live sandboxes found at start-up back: remounts their filesystems, recovers
    /// their uids (the owner of their root; a tree from before uid mapping is given a uid and
    /// handed over to it), recreates their cgroups, and removes cgroups of sandboxes that are
    /// gone. Problems are reported on stderr; a sandbox that cannot be set up is left as it is.
    pub fn adopt(&self, reg: &Registry, paths: &Paths) {
        let live: Vec<&Sandbox> = reg
            .sandboxes
            .values()
            .filter(|s| s.stage != Stage::Terminated)
            .collect();
        self.cgroups
            .remove_others(|name| live.iter().any(|s| s.id == name));
        for sb in live {
            if let Err(e) = self.adopt_one(sb, paths) {
                eprintln!(
                    "tensorlake-local: warning: sandbox {} could not be isolated again: {e}",
                    sb.id
                );
            }
        }
    }

    fn adopt_one(&self, sb: &Sandbox, paths: &Paths) -> io::Result<()> {
        let root = paths.sandbox_root(&sb.id);
        let image = disk::image_path(&paths.sandbox_dir(&sb.id));
        let layer = layers::layer_dir(&paths.sandbox_dir(&sb.id));
        let mut layered = false;
        match &self.layers {
            Some(l) if layer.is_dir() => {
                if let Some(d) = &self.disk {
                    if image.is_file() && !disk::is_mounted(&layer) {
                        d.mount(&image, &layer)?;
                    }
                }
                if layer.join("upper").is_dir() {
                    if !disk::is_mounted(&layer.join("upper/usr")) {
                        l.bind_usr(&layer)?;
                    }
                    if !disk::is_mounted(&root) {
                        l.mount(&layer, &root)?;
                    }
                    layered = true;
                }
            }
            _ if layer.is_dir() => {}
            _ => {
                if let Some(d) = &self.disk {
                    if image.is_file() && !disk::is_mounted(&root) {
                        d.mount(&image, &root)?;
                    }
                }
            }
        }
        let ids = if self.as_root {
            let owner = std::fs::symlink_metadata(&root)?.uid();
            if uids::in_range(owner) {
                self.uids.claim(owner);
                Some((owner, owner))
            } else {
                let uid = self
                    .uids
                    .allocate()
                    .ok_or_else(|| io::Error::other("no free sandbox uid"))?;
                hand_over(&root, uid)?;
                Some((uid, uid))
            }
        } else {
            None
        };
        self.register(sb, ids, layered)
    }

    /// Removes every sandbox's cgroups and filesystem mount at a clean stop, so the data
    /// directory can be deleted as soon as the server has exited (the clean-up process does the
    /// same after a crash, a moment later). Blocking.
    pub fn shutdown(&self) {
        self.net.stop_all();
        let ids: Vec<String> = self
            .live
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .keys()
            .cloned()
            .collect();
        for id in ids {
            if !self.cgroups.enforced().is_empty() {
                self.cgroups.remove(&id);
            }
        }
        for parent in self.cgroups.parents() {
            cgroups::remove_tree(&parent);
        }
        if self.disk.is_some() || self.layers.is_some() {
            disk::unmount_under(&self.sandboxes_dir);
        }
    }

    /// What a process of sandbox `id` runs with. A sandbox unknown here (its set-up failed)
    /// runs with nothing extra only when the server is not root; as root it is refused rather
    /// than run as host root.
    pub fn jail(&self, id: &str) -> io::Result<Arc<SandboxJail>> {
        if let Some(j) = self.live.lock().unwrap_or_else(|p| p.into_inner()).get(id) {
            return Ok(j.clone());
        }
        if self.as_root {
            Err(io::Error::other(format!(
                "sandbox {id} has no host uid (its set-up failed at start-up; see the server log)"
            )))
        } else {
            Ok(Arc::new(SandboxJail::default()))
        }
    }
}

/// Builds the image base and checks that sandboxes can be layered over it; notes what works.
fn image_layers(
    paths: &Paths,
    as_root: bool,
    notes: &mut Vec<String>,
) -> (Option<crate::image::Base>, Option<Layers>) {
    let base = match crate::image::prepare(&paths.data.join("images")) {
        Ok(b) => b,
        Err(e) => {
            notes.push(format!(
                "image: NOT available: the base could not be built ({e}); sandboxes get an empty root with the host's /usr"
            ));
            return (None, None);
        }
    };
    let fallback = "each sandbox gets a copy of the base's /etc, /data and /home, the host's /usr read-only \
         (pip install --user works, a plain pip install does not), and snapshots store the whole root";
    if !as_root {
        notes.push(format!(
            "image: layers NOT on: overlay mounts need root; {fallback}"
        ));
        return (Some(base), None);
    }
    match Layers::detect(&paths.tmp, base.clone()) {
        Ok(l) => {
            notes.push(format!(
                "image: {} on a read-only base, each sandbox's writes in its own overlay layer (all a snapshot stores)",
                crate::image::DEFAULT
            ));
            (Some(base), Some(l))
        }
        Err(e) => {
            notes.push(format!("image: layers NOT on: {e}; {fallback}"));
            (Some(base), None)
        }
    }
}

/// Gives every file of the tree at `root` that host root owns to `uid` (a sandbox made before
/// uid mapping). Iterative, and never follows a link.
fn hand_over(root: &Path, uid: u32) -> io::Result<()> {
    let mut stack = vec![root.to_path_buf()];
    while let Some(path) = stack.pop() {
        let meta = std::fs::symlink_metadata(&path)?;
        if meta.uid() == 0 {
            std::os::unix::fs::lchown(&path, Some(uid), Some(uid))?;
        }
        if meta.is_dir() {
            for e in std::fs::read_dir(&path)? {
                stack.push(e?.path());
            }
        }
    }
    Ok(())
}
