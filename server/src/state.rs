//! Shared server state: the in-memory registry of sandboxes and snapshots (the source of truth
//! for reads), and the startup recovery that turns what was on disk into a consistent registry.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use crate::config::{Args, Timing};
use crate::cors::Cors;
use crate::faults::Faults;
use crate::jail::Jail;
use crate::model::{now_ms, Sandbox, Snapshot, SnapshotStatus, Stage};
use crate::procs::Procs;
use crate::reqlog::RequestLog;
use crate::store::{Loaded, Op, Store};

/// Where things live under the data directory.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The data directory itself (absolute).
    pub data: PathBuf,
    /// `sandboxes/<id>/root` for each sandbox.
    pub sandboxes: PathBuf,
    /// Finished snapshot archives.
    pub snapshots: PathBuf,
    /// Archives being written (emptied at startup).
    pub tmp: PathBuf,
}

impl Paths {
    /// Layout under `data` (which must be absolute).
    pub fn new(data: PathBuf) -> Self {
        Paths {
            sandboxes: data.join("sandboxes"),
            snapshots: data.join("snapshots"),
            tmp: data.join("tmp"),
            data,
        }
    }

    /// Directory holding one sandbox; `id` is a server-issued id from a record.
    pub fn sandbox_dir(&self, id: &str) -> PathBuf {
        self.sandboxes.join(id)
    }

    /// The directory a sandbox sees as `/`.
    pub fn sandbox_root(&self, id: &str) -> PathBuf {
        self.sandboxes.join(id).join("root")
    }
}

/// All records, guarded by one mutex. Critical sections never await and never touch the disk.
#[derive(Default)]
pub struct Registry {
    /// Every sandbox ever created (terminated ones stay so GET can say so).
    pub sandboxes: HashMap<String, Sandbox>,
    /// Snapshots by `seq`, the listing order.
    pub snapshots: BTreeMap<i64, Snapshot>,
    /// Snapshot id -> seq.
    pub snapshot_ids: HashMap<String, i64>,
    /// Next snapshot `seq`.
    pub next_seq: i64,
    /// Archive file -> number of records that use it (seeded snapshots share one).
    pub archive_refs: HashMap<String, u32>,
    /// Sandbox pools by id.
    pub pools: HashMap<String, crate::pools::Pool>,
    /// Pool id -> sandboxes being created for it right now (they count against its limits).
    pub pool_pending: HashMap<String, usize>,
}

impl Registry {
    /// Snapshot by id.
    pub fn snapshot(&self, id: &str) -> Option<&Snapshot> {
        self.snapshot_ids
            .get(id)
            .and_then(|seq| self.snapshots.get(seq))
    }

    /// Mutable snapshot by id.
    pub fn snapshot_mut(&mut self, id: &str) -> Option<&mut Snapshot> {
        let seq = *self.snapshot_ids.get(id)?;
        self.snapshots.get_mut(&seq)
    }

    /// Adds a snapshot, taking the next `seq`.
    pub fn insert_snapshot(&mut self, mut snap: Snapshot) -> &Snapshot {
        snap.seq = self.next_seq;
        self.next_seq += 1;
        if let Some(a) = &snap.archive {
            *self.archive_refs.entry(a.clone()).or_default() += 1;
        }
        let seq = snap.seq;
        self.snapshot_ids.insert(snap.id.clone(), seq);
        self.snapshots.entry(seq).or_insert(snap)
    }

    /// Removes a snapshot; returns it and, when it was the last user of its archive, the archive
    /// file name to delete.
    pub fn remove_snapshot(&mut self, id: &str) -> Option<(Snapshot, Option<String>)> {
        let seq = self.snapshot_ids.remove(id)?;
        let snap = self.snapshots.remove(&seq)?;
        let orphan = snap.archive.as_ref().and_then(|a| self.release_archive(a));
        Some((snap, orphan))
    }

    /// Drops one reference to `archive`; returns it when nothing uses it any more.
    pub fn release_archive(&mut self, archive: &str) -> Option<String> {
        let n = self.archive_refs.get_mut(archive)?;
        *n = n.saturating_sub(1);
        if *n == 0 {
            self.archive_refs.remove(archive);
            Some(archive.to_string())
        } else {
            None
        }
    }

    /// Wire status of a sandbox at `now`.
    pub fn sandbox_status(&self, sb: &Sandbox, now: i64) -> &'static str {
        let in_progress = sb
            .snapshotting
            .as_deref()
            .and_then(|id| self.snapshot(id))
            .map(|s| s.status(now) == SnapshotStatus::InProgress)
            .unwrap_or(false);
        sb.status(now, in_progress)
    }

    /// Finds a sandbox of namespace `ns` by id, or by name among those not terminated.
    pub fn find_sandbox(&self, ns: &str, id_or_name: &str) -> Option<&Sandbox> {
        if let Some(sb) = self.sandboxes.get(id_or_name) {
            return (sb.namespace == ns).then_some(sb);
        }
        self.sandboxes.values().find(|sb| {
            sb.namespace == ns
                && sb.stage != Stage::Terminated
                && sb.name.as_deref() == Some(id_or_name)
        })
    }

    /// Finds the sandbox a daemon request (`Host: {x}.local` or `X-Tensorlake-Sandbox-Id: x`)
    /// names. Such a request carries no namespace, so:
    /// - an id is found in any namespace: ids are server-issued, unique and unguessable (20
    ///   random base-36 characters), and the SDKs address a sandbox by id after resolving it
    ///   through the namespaced lifecycle API;
    /// - a name is found only among the live sandboxes of namespace [`DAEMON_NAME_NAMESPACE`]
    ///   (the namespace of bare paths). Names are chosen by users and repeat across namespaces,
    ///   so a name never reaches another namespace's sandbox.
    pub fn find_daemon_sandbox(&self, id_or_name: &str) -> Option<&Sandbox> {
        if let Some(sb) = self.sandboxes.get(id_or_name) {
            return Some(sb);
        }
        self.sandboxes.values().find(|sb| {
            sb.namespace == DAEMON_NAME_NAMESPACE
                && sb.stage != Stage::Terminated
                && sb.name.as_deref() == Some(id_or_name)
        })
    }
}

/// The only namespace whose sandboxes daemon routes find by name (see
/// [`Registry::find_daemon_sandbox`]).
pub const DAEMON_NAME_NAMESPACE: &str = "default";

/// `snapshot_uri` is this prefix, `/`, and the archive's file name in `<data-dir>/snapshots/`.
pub const SNAPSHOT_URI_PREFIX: &str = "tensorlake-local://snapshots";

/// Archives written at the same time.
pub const ARCHIVE_SLOTS: usize = 4;

/// Everything a request handler can reach.
pub struct AppState {
    /// Parsed flags.
    pub args: Args,
    /// `http://127.0.0.1:PORT`: the `sandbox_url` of every running sandbox.
    pub base_url: String,
    /// Data directory layout.
    pub paths: Paths,
    /// Prefix of every `snapshot_uri`: an opaque name, never a host path (the data directory's
    /// location is nobody else's business).
    pub archive_url: String,
    /// Live timing knobs.
    pub timing: Timing,
    /// SQLite writer.
    pub store: Store,
    /// Records.
    reg: Mutex<Registry>,
    /// Scripted HTTP faults.
    pub faults: Faults,
    /// Ring buffer behind `GET /_admin/requests`.
    pub reqlog: RequestLog,
    /// Allowed browser origins.
    pub cors: Cors,
    /// bubblewrap launcher.
    pub jail: Jail,
    /// Processes started in sandboxes.
    pub procs: Procs,
    /// Sandbox id -> error message for its next snapshot (`POST /_admin/snapshot-failures`).
    pub snapshot_failures: Mutex<HashMap<String, String>>,
    /// Bounds concurrent archive jobs so a burst of snapshots cannot starve the machine.
    pub archive_slots: tokio::sync::Semaphore,
    /// Archive jobs started and not yet finished (queued ones included), for a clean stop.
    archives_in_flight: std::sync::atomic::AtomicUsize,
    /// Signalled when `archives_in_flight` drops to zero.
    archives_idle: tokio::sync::Notify,
    /// Per-sandbox file-tree lock: archiving holds it shared, deleting the tree exclusively.
    fs_locks: Mutex<HashMap<String, Arc<tokio::sync::RwLock<()>>>>,
}

impl AppState {
    /// Assembles the state. `loaded` must already have been through [`recover`].
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        args: Args,
        port: u16,
        paths: Paths,
        store: Store,
        registry: Registry,
        jail: Jail,
    ) -> Self {
        let cors = Cors::new(&args.cors_origins, port);
        let timing = Timing::new(&args);
        let archive_url = SNAPSHOT_URI_PREFIX.to_string();
        AppState {
            base_url: format!("http://127.0.0.1:{port}"),
            archive_url,
            timing,
            store,
            reg: Mutex::new(registry),
            faults: Faults::default(),
            reqlog: RequestLog::default(),
            cors,
            jail,
            procs: Procs::default(),
            snapshot_failures: Mutex::new(HashMap::new()),
            archive_slots: tokio::sync::Semaphore::new(ARCHIVE_SLOTS),
            archives_in_flight: std::sync::atomic::AtomicUsize::new(0),
            archives_idle: tokio::sync::Notify::new(),
            fs_locks: Mutex::new(HashMap::new()),
            paths,
            args,
        }
    }

    /// Locks the registry. A poisoned lock (a panic elsewhere) is recovered rather than
    /// propagated: the registry holds plain data, and one bug must not take every route down.
    pub fn reg(&self) -> MutexGuard<'_, Registry> {
        self.reg.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Drops the file-tree lock of a sandbox whose tree is gone.
    pub fn forget_fs_lock(&self, id: &str) {
        self.fs_locks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
    }

    /// Lets a clean stop lose nothing: waits (up to 10 s) for the archives being written, then
    /// for every queued SQLite write to commit.
    pub async fn quiesce(&self) {
        use std::sync::atomic::Ordering;
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let idle = self.archives_idle.notified();
            if self.archives_in_flight.load(Ordering::Acquire) == 0 {
                break;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                break;
            }
        }
        let _ = crate::store::committed(self.store.send_acked(Vec::new())).await;
    }

    /// Counts an archive job from the moment it is decided (before it is spawned) until the
    /// returned guard is dropped, so a clean stop waits for queued jobs too.
    pub fn archive_job(self: &Arc<Self>) -> ArchiveJob {
        self.archives_in_flight
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        ArchiveJob(self.clone())
    }

    /// The file-tree lock of sandbox `id`.
    pub fn fs_lock(&self, id: &str) -> Arc<tokio::sync::RwLock<()>> {
        let mut locks = self.fs_locks.lock().unwrap_or_else(|p| p.into_inner());
        locks.entry(id.to_string()).or_default().clone()
    }
}

/// See [`AppState::archive_job`].
pub struct ArchiveJob(Arc<AppState>);

impl Drop for ArchiveJob {
    fn drop(&mut self) {
        if self
            .0
            .archives_in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel)
            == 1
        {
            self.0.archives_idle.notify_waiters();
        }
    }
}

/// What startup recovery did, for the log.
#[derive(Debug, Default)]
pub struct RecoveryReport {
    /// Sandboxes kept usable.
    pub sandboxes_live: usize,
    /// Snapshots found `in_progress` and marked failed.
    pub snapshots_failed: usize,
    /// Leftover files removed (partial archives, orphaned trees).
    pub files_removed: usize,
}

/// Message of a snapshot that was in progress when the server stopped.
pub const INTERRUPTED_SNAPSHOT: &str =
    "the server stopped while this snapshot was in progress; its archive was not finished (take a new snapshot)";

/// Turns the rows found on disk into a consistent registry, fixing what a crash left behind:
/// - live sandboxes come back `running` (a sandbox is its directory; only processes are lost);
/// - a sandbox whose directory vanished is marked terminated;
/// - a snapshot without a finished archive becomes `failed` with [`INTERRUPTED_SNAPSHOT`];
/// - partial archives, archives no record uses, and trees of terminated or unknown sandboxes
///   are removed.
///
/// Changed rows are written back through `store`.
pub fn recover(loaded: Loaded, paths: &Paths, store: &Store) -> (Registry, RecoveryReport) {
    let now = now_ms();
    let mut report = RecoveryReport::default();
    let mut reg = Registry::default();
    let mut ops = Vec::new();

    for mut sb in loaded.sandboxes {
        let mut changed = false;
        if sb.snapshotting.take().is_some() {
            changed = true;
        }
        if sb.stage != Stage::Terminated && !paths.sandbox_root(&sb.id).is_dir() {
            sb.stage = Stage::Terminated;
            sb.terminated_at = Some(now);
            sb.termination_reason = Some("its files were missing when the server restarted".into());
            changed = true;
        }
        if sb.stage == Stage::Active && sb.ready_at > now {
            // Startup delay is a simulation; a restart does not make anyone wait again.
            sb.ready_at = now;
            changed = true;
        }
        if sb.stage != Stage::Terminated {
            report.sandboxes_live += 1;
        }
        if changed {
            ops.push(Op::PutSandbox(sb.clone()));
        }
        reg.sandboxes.insert(sb.id.clone(), sb);
    }

    for mut snap in loaded.snapshots {
        let mut changed = false;
        if snap.failed_at.is_none() && snap.local_ready_at.is_none() {
            snap.error = Some(INTERRUPTED_SNAPSHOT.into());
            snap.failed_at = Some(now);
            report.snapshots_failed += 1;
            changed = true;
        }
        if let Some(a) = snap.archive.clone() {
            if !paths.snapshots.join(&a).is_file() {
                snap.archive = None;
                if snap.failed_at.is_none() {
                    snap.error = Some(format!(
                        "the archive {a} was missing when the server restarted"
                    ));
                    snap.failed_at = Some(now);
                    report.snapshots_failed += 1;
                }
                changed = true;
            }
        }
        if changed {
            ops.push(Op::PutSnapshot(snap.clone()));
        }
        let seq = snap.seq;
        reg.next_seq = reg.next_seq.max(seq + 1);
        if let Some(a) = &snap.archive {
            *reg.archive_refs.entry(a.clone()).or_default() += 1;
        }
        reg.snapshot_ids.insert(snap.id.clone(), seq);
        reg.snapshots.insert(seq, snap);
    }

    for pool in loaded.pools {
        reg.pools.insert(pool.id.clone(), pool);
    }

    report.files_removed += clean_dir(&paths.tmp, |_| false);
    report.files_removed += clean_dir(&paths.snapshots, |name| reg.archive_refs.contains_key(name));
    report.files_removed += clean_dir(&paths.sandboxes, |name| {
        reg.sandboxes
            .get(name)
            .map(|sb| sb.stage != Stage::Terminated)
            .unwrap_or(false)
    });

    if !ops.is_empty() {
        store.send(ops);
    }
    (reg, report)
}

/// Removes every entry of `dir` for which `keep(name)` is false; returns how many went.
fn clean_dir(dir: &Path, keep: impl Fn(&str) -> bool) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if keep(&name) {
            continue;
        }
        let path = entry.path();
        // Iterative and never through a link: a planted link cannot redirect the deletion,
        // and no depth of nesting can overflow the stack.
        let ok = crate::dirwalk::remove_path(&path).is_ok();
        if ok {
            removed += 1;
        }
    }
    removed
}
