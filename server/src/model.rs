//! The two records the server keeps (sandboxes and snapshots), their derived statuses and their
//! wire JSON (docs/wire-protocol.md sections 2 and 3).
//!
//! Statuses that only depend on the clock (`pending` -> `running`, `in_progress` -> `local_ready`
//! -> `completed`) are computed from stored instants when read, so no timer task runs per record:
//! a thousand concurrent snapshots cost a thousand rows, not a thousand timers.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// Image a create request gets when it names none (the one base there is; see `image`).
pub const DEFAULT_IMAGE: &str = crate::image::DEFAULT;
/// CPUs of a sandbox created without `resources.cpus`.
pub const DEFAULT_CPUS: f64 = 1.0;
/// Memory of a sandbox created without `resources.memory_mb`.
pub const DEFAULT_MEMORY_MB: i64 = 1024;
/// Disk of a sandbox created without `resources.disk_mb`.
pub const DEFAULT_DISK_MB: i64 = 10240;
/// Format tag of the archives this server writes (`snapshot_format_version`).
pub const SNAPSHOT_FORMAT: &str = "tar+zstd/1";

/// Milliseconds since the Unix epoch, the unit of every timestamp on the wire.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A new identifier: `prefix` plus 20 lowercase base-36 characters.
///
/// Lowercase alphanumerics only, so an id is a valid DNS label (`Host: {id}.local`) and safe in a
/// file name. The bits come from SipHash with per-process random keys over the clock and a
/// counter: unique and unguessable enough for a loopback test server, with no extra crate.
pub fn new_id(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    static KEYS: std::sync::OnceLock<RandomState> = std::sync::OnceLock::new();
    let keys = KEYS.get_or_init(RandomState::new);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut a = keys.build_hasher();
    a.write_u128(nanos);
    a.write_u64(n);
    let mut b = keys.build_hasher();
    b.write_u64(a.finish());
    b.write_u64(n.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15);
    let mut value = ((a.finish() as u128) << 64) | b.finish() as u128;
    let alphabet = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = String::with_capacity(prefix.len() + 20);
    out.push_str(prefix);
    for _ in 0..20 {
        out.push(alphabet[(value % 36) as usize] as char);
        value /= 36;
    }
    out
}

/// Life stage of a sandbox as stored; the wire status adds `pending` and `snapshotting`, which
/// are derived (see [`Sandbox::status`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// Pending until `ready_at`, then running.
    Active,
    /// Suspended: no processes; resumable.
    Suspended,
    /// Deleted: the record stays so GET answers `terminated`; the files are gone.
    Terminated,
}

/// Kind of snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SnapshotType {
    /// Files only; restores may change resources.
    Filesystem,
    /// Files plus the recorded resources; restores must keep them (no process memory is kept).
    Memory,
}

impl SnapshotType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotType::Filesystem => "filesystem",
            SnapshotType::Memory => "memory",
        }
    }
}

/// One sandbox. Its files live in `<data>/sandboxes/<id>/root`, a path built from this record's
/// own server-issued id, never from request text.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sandbox {
    /// Server-issued id.
    pub id: String,
    /// Namespace it was created in.
    pub namespace: String,
    /// Optional unique (per namespace, among live sandboxes) name.
    pub name: Option<String>,
    /// Recorded image name.
    pub image: String,
    /// Recorded CPUs (not enforced).
    pub cpus: f64,
    /// Recorded memory (not enforced).
    pub memory_mb: i64,
    /// Recorded disk size (not enforced).
    pub disk_mb: i64,
    /// Recorded lifetime (not enforced).
    pub timeout_secs: Option<i64>,
    /// Recorded entrypoint (not run).
    pub entrypoint: Option<Vec<String>>,
    /// Network policy in its checked form (`netpolicy::NetPolicy::to_json`); `None`: the
    /// default, internet access on.
    pub network: Option<Value>,
    /// Recorded proxy access flag.
    pub allow_unauthenticated_access: bool,
    /// Recorded exposed ports.
    pub exposed_ports: Vec<u16>,
    /// Creation instant (epoch ms).
    pub created_at: i64,
    /// Instant at which `pending` becomes `running`.
    pub ready_at: i64,
    /// Stored stage.
    pub stage: Stage,
    /// When it was terminated.
    pub terminated_at: Option<i64>,
    /// Why it was terminated.
    pub termination_reason: Option<String>,
    /// Snapshot it was restored from.
    pub restored_from: Option<String>,
    /// Snapshot being taken of it, if any (the sandbox shows `snapshotting` while that snapshot
    /// is `in_progress`).
    #[serde(default)]
    pub snapshotting: Option<String>,
    /// Sandbox pool it was made for (see `pools`).
    #[serde(default)]
    pub pool_id: Option<String>,
    /// An unclaimed warm sandbox of `pool_id`: hidden from listings until a claim hands it out.
    #[serde(default)]
    pub pool_warm: bool,
    /// When it was last resumed: `timeout_secs` counts from here, else from `created_at`.
    #[serde(default)]
    pub resumed_at: Option<i64>,
    /// How it ended, as the official models read it (`"timeout"` when `timeout_secs` ended it).
    #[serde(default)]
    pub outcome: Option<String>,
}

/// One snapshot.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// Server-issued id.
    pub id: String,
    /// Insertion order, which is also the listing order.
    pub seq: i64,
    /// Namespace of the source sandbox.
    pub namespace: String,
    /// Source sandbox.
    pub sandbox_id: String,
    /// Image of the source sandbox (inherited by restores).
    pub base_image: String,
    /// Kind.
    pub snapshot_type: SnapshotType,
    /// Resources of the source sandbox (inherited by restores; binding for memory snapshots).
    pub cpus: f64,
    /// See `cpus`.
    pub memory_mb: i64,
    /// See `cpus`.
    pub disk_mb: i64,
    /// Entrypoint of the source sandbox.
    pub entrypoint: Option<Vec<String>>,
    /// Network policy of the source sandbox (inherited by restores that send none).
    #[serde(default)]
    pub network: Option<Value>,
    /// Creation instant.
    pub created_at: i64,
    /// Archive file name under `<data>/snapshots/`, set once the archive is durably written.
    /// Several records may share one (seeded snapshots).
    pub archive: Option<String>,
    /// Archive size in bytes.
    pub size_bytes: Option<u64>,
    /// Total bytes of the regular files archived.
    pub rootfs_disk_bytes: Option<u64>,
    /// Instant the status becomes `local_ready` (set when the archive is written).
    pub local_ready_at: Option<i64>,
    /// Instant the status becomes `completed`.
    pub completed_at: Option<i64>,
    /// Failure message.
    pub error: Option<String>,
    /// Instant the status becomes `failed` (a scripted failure first shows `in_progress`).
    pub failed_at: Option<i64>,
}

/// Wire status of a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotStatus {
    /// Archive being written (or a failure not yet due).
    InProgress,
    /// Restorable.
    LocalReady,
    /// Restorable and "durable" (has a `snapshot_uri`).
    Completed,
    /// Ended with `error`.
    Failed,
}

impl SnapshotStatus {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            SnapshotStatus::InProgress => "in_progress",
            SnapshotStatus::LocalReady => "local_ready",
            SnapshotStatus::Completed => "completed",
            SnapshotStatus::Failed => "failed",
        }
    }
}

impl Snapshot {
    /// Status at instant `now`.
    pub fn status(&self, now: i64) -> SnapshotStatus {
        if let Some(failed_at) = self.failed_at {
            return if now >= failed_at {
                SnapshotStatus::Failed
            } else {
                SnapshotStatus::InProgress
            };
        }
        match (self.local_ready_at, self.completed_at) {
            (Some(ready), _) if now < ready => SnapshotStatus::InProgress,
            (Some(_), Some(done)) if now < done => SnapshotStatus::LocalReady,
            (Some(_), _) => SnapshotStatus::Completed,
            (None, _) => SnapshotStatus::InProgress,
        }
    }

    /// The SnapshotInfo object of wire-protocol.md section 2.2: `id` only (never also
    /// `snapshot_id`), epoch-ms `created_at`, size once restorable, `snapshot_uri` once completed.
    pub fn view<'a>(&'a self, now: i64, archive_dir_url: &str) -> SnapshotView<'a> {
        let status = self.status(now);
        let ready = matches!(
            status,
            SnapshotStatus::LocalReady | SnapshotStatus::Completed
        );
        SnapshotView {
            id: &self.id,
            namespace: &self.namespace,
            sandbox_id: &self.sandbox_id,
            base_image: &self.base_image,
            status: status.as_str(),
            error: if status == SnapshotStatus::Failed {
                self.error.as_deref()
            } else {
                None
            },
            snapshot_type: self.snapshot_type.as_str(),
            snapshot_uri: match (&self.archive, status) {
                (Some(a), SnapshotStatus::Completed) => Some(format!("{archive_dir_url}/{a}")),
                _ => None,
            },
            snapshot_format_version: SNAPSHOT_FORMAT,
            size_bytes: if ready { self.size_bytes } else { None },
            rootfs_disk_bytes: if ready { self.rootfs_disk_bytes } else { None },
            created_at: self.created_at,
        }
    }
}

/// Wire form of a snapshot, borrowing from the record (listing 10,000 of them allocates little).
#[derive(Debug, Serialize)]
pub struct SnapshotView<'a> {
    id: &'a str,
    namespace: &'a str,
    sandbox_id: &'a str,
    base_image: &'a str,
    status: &'static str,
    error: Option<&'a str>,
    snapshot_type: &'static str,
    snapshot_uri: Option<String>,
    snapshot_format_version: &'static str,
    size_bytes: Option<u64>,
    rootfs_disk_bytes: Option<u64>,
    created_at: i64,
}

impl Sandbox {
    /// Wire status at `now`; `snapshot_in_progress` says whether the snapshot named by
    /// `self.snapshotting` is still `in_progress`.
    pub fn status(&self, now: i64, snapshot_in_progress: bool) -> &'static str {
        match self.stage {
            Stage::Terminated => "terminated",
            Stage::Suspended => "suspended",
            Stage::Active if now < self.ready_at => "pending",
            Stage::Active if snapshot_in_progress => "snapshotting",
            Stage::Active => "running",
        }
    }

    /// The SandboxInfo object of section 3.3. `sandbox_url` (the server's own origin) is present
    /// while the sandbox can serve process calls; both `disk_mb` (what WHL reads) and
    /// `ephemeral_disk_mb` (what TL and IX use) are sent, and the network policy both as
    /// `network` (TL) and `network_policy` (WHL): the stored one, or the default this server
    /// gives (`networked`: internet access, or loopback only where it has no networking).
    pub fn to_json(&self, status: &str, base_url: &str, networked: bool) -> Value {
        let routable = matches!(status, "running" | "snapshotting");
        let network = self.network.clone().unwrap_or_else(|| {
            json!({ "allow_internet_access": networked, "allow_out": [], "deny_out": [] })
        });
        json!({
            "id": self.id,
            "namespace": self.namespace,
            "name": self.name,
            "status": status,
            "image": self.image,
            "resources": {
                "cpus": self.cpus,
                "memory_mb": self.memory_mb,
                "disk_mb": self.disk_mb,
                "ephemeral_disk_mb": self.disk_mb,
            },
            "timeout_secs": self.timeout_secs,
            "entrypoint": self.entrypoint,
            "network": network,
            "network_policy": network,
            "created_at": self.created_at,
            "terminated_at": self.terminated_at,
            "termination_reason": self.termination_reason,
            "outcome": self.outcome,
            "pending_reason": if status == "pending" { json!("scheduling") } else { Value::Null },
            "sandbox_url": if routable { json!(base_url) } else { Value::Null },
            "routing_hint": Value::Null,
            "allow_unauthenticated_access": self.allow_unauthenticated_access,
            "exposed_ports": self.exposed_ports,
            "file_systems": [],
            "snapshot_id": self.restored_from,
            "pool_id": self.pool_id,
        })
    }

    /// The create response of section 3.1 (`sandbox_id`, not `id`).
    pub fn to_create_json(&self, status: &str, base_url: &str) -> Value {
        let routable = matches!(status, "running" | "snapshotting");
        json!({
            "sandbox_id": self.id,
            "status": status,
            "name": self.name,
            "sandbox_url": if routable { json!(base_url) } else { Value::Null },
            "routing_hint": Value::Null,
            "pending_reason": if status == "pending" { json!("scheduling") } else { Value::Null },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_dns_labels_and_distinct() {
        let a = new_id("sbx-");
        let b = new_id("sbx-");
        assert_ne!(a, b);
        assert_eq!(a.len(), 24);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-'));
    }

    #[test]
    fn snapshot_status_follows_the_clock() {
        let mut s = Snapshot {
            id: "s".into(),
            seq: 1,
            namespace: "default".into(),
            sandbox_id: "x".into(),
            base_image: DEFAULT_IMAGE.into(),
            snapshot_type: SnapshotType::Filesystem,
            cpus: 1.0,
            memory_mb: 1024,
            disk_mb: 10240,
            entrypoint: None,
            network: None,
            created_at: 0,
            archive: None,
            size_bytes: None,
            rootfs_disk_bytes: None,
            local_ready_at: None,
            completed_at: None,
            error: None,
            failed_at: None,
        };
        assert_eq!(s.status(100), SnapshotStatus::InProgress);
        s.local_ready_at = Some(10);
        s.completed_at = Some(20);
        assert_eq!(s.status(5), SnapshotStatus::InProgress);
        assert_eq!(s.status(10), SnapshotStatus::LocalReady);
        assert_eq!(s.status(20), SnapshotStatus::Completed);
        s.failed_at = Some(30);
        assert_eq!(s.status(25), SnapshotStatus::InProgress);
        assert_eq!(s.status(30), SnapshotStatus::Failed);
    }
}
