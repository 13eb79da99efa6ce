//! One cgroup per sandbox, which every process of the sandbox is placed in before it runs (see
//! `jail.rs`): memory (and swap), CPU bandwidth and a pids limit. cgroup v2 (one hierarchy,
//! `memory.max`, `cpu.max`, `pids.max`) and v1 (one hierarchy per controller) are both handled.
//!
//! The sandboxes' cgroups live under one parent per data directory,
//! `tensorlake-local-<hash of the data directory>`, itself placed under the server's own cgroup
//! (v1), or beside it (v2, where a cgroup holding processes cannot give controllers to children).

use std::ffi::OsStr;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// CFS period used for `cpus`: 100 ms, the kernel default.
const CPU_PERIOD_US: u64 = 100_000;

/// Limits of one sandbox.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Memory in MiB (swap included where the kernel can count it).
    pub memory_mb: i64,
    /// CPUs, as CFS quota over period.
    pub cpus: f64,
    /// Maximum number of tasks.
    pub pids: u64,
}

/// A controller this server sets, and where.
#[derive(Debug, Clone)]
struct Controller {
    /// `memory`, `cpu` or `pids`.
    name: &'static str,
    /// The server's parent cgroup in that controller's hierarchy.
    parent: PathBuf,
}

/// The cgroup controllers in use.
#[derive(Debug, Clone)]
pub struct Cgroups {
    v2: bool,
    controllers: Vec<Controller>,
}

const WANTED: [&str; 3] = ["memory", "cpu", "pids"];
/// v1 hierarchies used besides the limits: the freezer, which suspends a sandbox.
const V1_EXTRA: [&str; 1] = ["freezer"];

impl Cgroups {
    /// Finds the hierarchies and creates the parent `name` in each. Returns the controllers that
    /// work (possibly none) and, for each that does not, the reason.
    pub fn detect(name: &str) -> (Cgroups, Vec<(&'static str, String)>) {
        let root = Path::new("/sys/fs/cgroup");
        let own = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        if root.join("cgroup.controllers").is_file() {
            return detect_v2(root, &own, name);
        }
        let mut cg = Cgroups {
            v2: false,
            controllers: Vec::new(),
        };
        let mut problems = Vec::new();
        for ctrl in WANTED.into_iter().chain(V1_EXTRA) {
            let mount = root.join(ctrl);
            if !mount.join("cgroup.procs").is_file() {
                problems.push((ctrl, format!("no v1 hierarchy at {}", mount.display())));
                continue;
            }
            let own_path = own
                .lines()
                .filter_map(|l| {
                    let mut parts = l.splitn(3, ':');
                    parts.next();
                    parts.next().zip(parts.next())
                })
                .find(|(ctrls, _)| ctrls.split(',').any(|c| c == ctrl))
                .map(|(_, p)| p.trim_start_matches('/').to_string())
                .unwrap_or_default();
            let parent = mount.join(own_path).join(name);
            match std::fs::create_dir_all(&parent) {
                Ok(()) => cg.controllers.push(Controller { name: ctrl, parent }),
                Err(e) => {
                    problems.push((ctrl, format!("cannot create {} ({e})", parent.display())))
                }
            }
        }
        (cg, problems)
    }

    /// Whether sandboxes can be frozen (v1 `freezer` hierarchy, or any v2 cgroup).
    pub fn can_freeze(&self) -> bool {
        if self.v2 {
            !self.controllers.is_empty()
        } else {
            self.controllers.iter().any(|c| c.name == "freezer")
        }
    }

    /// Freezes or thaws every process of sandbox `id` and waits (up to 2 s) until the kernel
    /// reports it done. Blocking.
    pub fn freeze(&self, id: &str, frozen: bool) -> io::Result<()> {
        let (file, value, done_file, done): (&str, &str, &str, &str) = match (self.v2, frozen) {
            (true, true) => ("cgroup.freeze", "1", "cgroup.events", "frozen 1"),
            (true, false) => ("cgroup.freeze", "0", "cgroup.events", "frozen 0"),
            (false, true) => ("freezer.state", "FROZEN", "freezer.state", "FROZEN"),
            (false, false) => ("freezer.state", "THAWED", "freezer.state", "THAWED"),
        };
        let dir = if self.v2 {
            self.controllers.first().map(|c| c.parent.join(id))
        } else {
            self.controllers
                .iter()
                .find(|c| c.name == "freezer")
                .map(|c| c.parent.join(id))
        }
        .ok_or_else(|| io::Error::other("no cgroup freezer"))?;
        std::fs::write(dir.join(file), value)?;
        for _ in 0..200 {
            let state = std::fs::read_to_string(dir.join(done_file)).unwrap_or_default();
            if state.lines().any(|l| l.trim() == done) {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        Err(io::Error::other(format!(
            "{} did not reach {done}",
            dir.join(done_file).display()
        )))
    }

    /// Names of the controllers in use.
    pub fn enforced(&self) -> Vec<&'static str> {
        self.controllers.iter().map(|c| c.name).collect()
    }

    /// `v1` or `v2`.
    pub fn version(&self) -> &'static str {
        if self.v2 {
            "v2"
        } else {
            "v1"
        }
    }

    /// The parents (one per hierarchy), for the clean-up after the server exits.
    pub fn parents(&self) -> Vec<PathBuf> {
        let mut p: Vec<PathBuf> = self.controllers.iter().map(|c| c.parent.clone()).collect();
        p.dedup();
        p
    }

    /// The `cgroup.procs` files of sandbox `id`'s limits (memory, cpu, pids), without the v1
    /// freezer: what the sandbox's slirp4netns joins, so its memory and CPU count as the
    /// sandbox's, while suspending never freezes it (it is stopped first).
    pub fn limit_procs(&self, id: &str) -> Vec<PathBuf> {
        self.dirs(id)
            .into_iter()
            .filter(|(name, _)| *name != "freezer")
            .map(|(_, dir)| dir.join("cgroup.procs"))
            .collect()
    }

    fn dirs(&self, id: &str) -> Vec<(&'static str, PathBuf)> {
        let mut out: Vec<(&'static str, PathBuf)> = Vec::new();
        for c in &self.controllers {
            let dir = c.parent.join(id);
            if !out.iter().any(|(_, d)| *d == dir) {
                out.push((c.name, dir));
            }
        }
        out
    }

    /// Creates the cgroup(s) of sandbox `id` with `limits`; returns the `cgroup.procs` files a
    /// jailed process writes itself into.
    pub fn create(&self, id: &str, limits: Limits) -> io::Result<Vec<PathBuf>> {
        let mut procs = Vec::new();
        for (_, dir) in self.dirs(id) {
            match std::fs::create_dir(&dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
            procs.push(dir.join("cgroup.procs"));
        }
        for c in &self.controllers {
            let dir = c.parent.join(id);
            self.set(c.name, &dir, limits)?;
        }
        Ok(procs)
    }

    fn set(&self, ctrl: &str, dir: &Path, l: Limits) -> io::Result<()> {
        let bytes = (l.memory_mb.max(1) as u64) << 20;
        let quota = ((l.cpus * CPU_PERIOD_US as f64) as u64).max(1000);
        let w = |file: &str, value: String| {
            std::fs::write(dir.join(file), value)
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.join(file).display())))
        };
        match (self.v2, ctrl) {
            (true, "memory") => {
                w("memory.max", bytes.to_string())?;
                // Swap would let a sandbox go past its memory by paging out.
                if dir.join("memory.swap.max").exists() {
                    w("memory.swap.max", "0".into())?;
                }
            }
            (true, "cpu") => w("cpu.max", format!("{quota} {CPU_PERIOD_US}"))?,
            (_, "pids") => w("pids.max", l.pids.to_string())?,
            (false, "memory") => {
                // memsw must stay >= the memory limit, so lower it after (and raise it before).
                let memsw = dir.join("memory.memsw.limit_in_bytes");
                let has_memsw = memsw.exists();
                if has_memsw {
                    let _ = std::fs::write(&memsw, u64::MAX.to_string());
                }
                w("memory.limit_in_bytes", bytes.to_string())?;
                if has_memsw {
                    w("memory.memsw.limit_in_bytes", bytes.to_string())?;
                }
            }
            (false, "cpu") => {
                w("cpu.cfs_period_us", CPU_PERIOD_US.to_string())?;
                w("cpu.cfs_quota_us", quota.to_string())?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Kills whatever still runs in sandbox `id`'s cgroups and removes them (blocking: waits up
    /// to about 2 s for dying processes to leave).
    pub fn remove(&self, id: &str) {
        for (_, dir) in self.dirs(id) {
            remove_cgroup(&dir);
        }
    }

    /// Removes the cgroups under the parents whose name `keep` refuses (sandboxes that are gone).
    pub fn remove_others(&self, keep: impl Fn(&str) -> bool) -> usize {
        let mut removed = 0;
        for parent in self.parents() {
            let Ok(entries) = std::fs::read_dir(&parent) else {
                continue;
            };
            for e in entries.flatten() {
                let name = e.file_name();
                let name = name.to_string_lossy();
                if e.path().is_dir() && !keep(&name) {
                    remove_cgroup(&e.path());
                    removed += 1;
                }
            }
        }
        removed
    }
}

fn detect_v2(root: &Path, own: &str, name: &str) -> (Cgroups, Vec<(&'static str, String)>) {
    let own_path = own
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .unwrap_or("/")
        .trim_start_matches('/');
    // A cgroup with processes cannot hand controllers to children ("no internal processes"), so
    // the parent goes beside the server's own cgroup.
    let base = match Path::new(own_path).parent() {
        Some(p) if !own_path.is_empty() => root.join(p),
        _ => root.to_path_buf(),
    };
    let mut cg = Cgroups {
        v2: true,
        controllers: Vec::new(),
    };
    let mut problems = Vec::new();
    let parent = base.join(name);
    // One controller per write: a write naming one the kernel lacks fails as a whole.
    let enable = |dir: &Path| {
        for ctrl in WANTED {
            let _ = std::fs::write(dir.join("cgroup.subtree_control"), format!("+{ctrl}"));
        }
    };
    enable(&base);
    if let Err(e) = std::fs::create_dir_all(&parent) {
        for ctrl in WANTED {
            problems.push((ctrl, format!("cannot create {} ({e})", parent.display())));
        }
        return (cg, problems);
    }
    enable(&parent);
    let on = std::fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap_or_default();
    for ctrl in WANTED {
        if on.split_whitespace().any(|c| c == ctrl) {
            cg.controllers.push(Controller {
                name: ctrl,
                parent: parent.clone(),
            });
        } else {
            problems.push((ctrl, format!("not delegated to {} (v2)", parent.display())));
        }
    }
    (cg, problems)
}

/// Kills the members of cgroup `dir` and removes it, retrying while they die.
pub fn remove_cgroup(dir: &Path) {
    // A frozen task cannot die: thaw first.
    let _ = std::fs::write(dir.join("freezer.state"), "THAWED");
    if dir.join("cgroup.freeze").exists() {
        let _ = std::fs::write(dir.join("cgroup.freeze"), "0");
    }
    for _ in 0..100 {
        if let Ok(procs) = std::fs::read_to_string(dir.join("cgroup.procs")) {
            for pid in procs.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
                // SAFETY: kill(2) on a pid listed in the sandbox's own cgroup.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
        }
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// Removes every cgroup under `parent` and then `parent` itself (after the server is gone).
pub fn remove_tree(parent: &Path) {
    if let Ok(entries) = std::fs::read_dir(parent) {
        for e in entries.flatten() {
            if e.path().is_dir() && e.file_name() != OsStr::new(".") {
                remove_cgroup(&e.path());
            }
        }
    }
    remove_cgroup(parent);
}
