//! Decoding of API responses (wire-protocol §2, §3), tolerant in the ways real servers differ.
//!
//! - `id` or `snapshot_id` / `sandbox_id`; unknown fields are ignored;
//! - timestamps in seconds, milliseconds, microseconds or RFC 3339;
//! - an unknown status is kept as its string (a newer server is not an error);
//! - a field of the wrong type is treated as absent rather than failing the whole call.
//!
//! Only a missing id or status, which leaves nothing usable, is an error. Records keep string
//! fields as the host's JSON values (`J`), so in wasm they reach the caller without a copy.

use crate::platform::{Json, Key};
use crate::time::{epoch_number_to_ms, epoch_text_to_ms};

/// A snapshot (wire-protocol §2.2).
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)] // fields mirror the wire object documented there
pub struct SnapshotRecord<J> {
    pub snapshot_id: J,
    pub namespace: Option<J>,
    pub sandbox_id: Option<J>,
    pub base_image: Option<J>,
    pub status: J,
    pub snapshot_type: Option<J>,
    pub error: Option<J>,
    pub snapshot_uri: Option<J>,
    pub snapshot_format_version: Option<J>,
    pub size_bytes: Option<f64>,
    pub rootfs_disk_bytes: Option<f64>,
    /// Epoch milliseconds.
    pub created_at_ms: Option<f64>,
}

/// The answer to a snapshot request (wire-protocol §2.1).
#[derive(Debug, Clone, PartialEq)]
pub struct SnapshotCreated<J> {
    /// The new snapshot's id.
    pub snapshot_id: J,
    /// Its status, normally `in_progress`.
    pub status: J,
}

/// A sandbox: the create response (§3.1) and the full record (§3.3) decode into this one shape;
/// fields the create response lacks are `None`.
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct SandboxRecord<J> {
    pub sandbox_id: J,
    pub namespace: Option<J>,
    pub status: J,
    pub image: Option<J>,
    pub cpus: Option<f64>,
    pub memory_mb: Option<f64>,
    pub disk_mb: Option<f64>,
    pub sandbox_url: Option<J>,
    pub routing_hint: Option<J>,
    pub name: Option<J>,
    pub timeout_secs: Option<f64>,
    pub entrypoint: Option<J>,
    pub termination_reason: Option<J>,
    pub error_details: Option<J>,
    /// Epoch milliseconds.
    pub created_at_ms: Option<f64>,
    /// Epoch milliseconds.
    pub terminated_at_ms: Option<f64>,
    /// The object as the server sent it: the fields not decoded above reach the caller from it.
    pub raw: J,
}

/// One entry of a directory listing (§5.3).
#[derive(Debug, Clone, PartialEq)]
#[allow(missing_docs)]
pub struct DirEntry<J> {
    pub name: J,
    pub is_dir: bool,
    pub size: Option<f64>,
    /// Epoch milliseconds.
    pub modified_at_ms: Option<f64>,
}

// The helpers below index objects the callers checked with `is_object`, or values a read returned
// (never `null`): the precondition of `Json::string_field` and friends.
fn string<J: Json>(obj: &J, key: Key) -> Option<J> {
    obj.string_field(key)
}

fn number<J: Json>(obj: &J, key: Key) -> Option<f64> {
    obj.number_field(key).filter(|n| n.is_finite())
}

/// A timestamp in any of the accepted forms, as epoch milliseconds. `obj` must not be `null`.
pub fn timestamp<J: Json>(obj: &J, key: Key) -> Option<f64> {
    // Numbers first: the common case costs one read.
    match obj.number_field(key) {
        Some(n) => epoch_number_to_ms(n),
        None => epoch_text_to_ms(&obj.string_field(key)?.as_string()?),
    }
}

fn id_of<J: Json>(obj: &J, specific: Key) -> Option<J> {
    string(obj, Key::Id).or_else(|| string(obj, specific))
}

/// Decodes a snapshot object.
pub fn snapshot<J: Json>(obj: &J) -> Result<SnapshotRecord<J>, String> {
    if !obj.is_object() {
        return Err("a snapshot must be a JSON object".into());
    }
    Ok(SnapshotRecord {
        snapshot_id: id_of(obj, Key::SnapshotId)
            .ok_or("snapshot has no \"id\" or \"snapshot_id\"")?,
        namespace: string(obj, Key::Namespace),
        sandbox_id: string(obj, Key::SandboxId),
        base_image: string(obj, Key::BaseImage),
        status: string(obj, Key::Status).ok_or("snapshot has no \"status\"")?,
        snapshot_type: string(obj, Key::SnapshotType),
        error: string(obj, Key::Error),
        snapshot_uri: string(obj, Key::SnapshotUri),
        snapshot_format_version: string(obj, Key::SnapshotFormatVersion),
        size_bytes: number(obj, Key::SizeBytes),
        rootfs_disk_bytes: number(obj, Key::RootfsDiskBytes),
        created_at_ms: timestamp(obj, Key::CreatedAt),
    })
}

/// Decodes `{"snapshots": [...]}` (or `{"items": [...]}`, which some servers send).
pub fn snapshot_list<J: Json>(body: &J) -> Result<Vec<SnapshotRecord<J>>, String> {
    let items = body
        .get(Key::Snapshots)
        .or_else(|| body.get(Key::Items))
        .and_then(|list| list.elements())
        .ok_or("expected an object with a \"snapshots\" array")?;
    try_map(&items, snapshot)
}

/// `items.iter().map(f).collect::<Result<Vec<_>, _>>()` as a plain loop: the iterator adapters
/// behind collecting into a `Result` measured about 600 bytes of wasm per use.
fn try_map<J, T>(items: &[J], mut f: impl FnMut(&J) -> Result<T, String>) -> Result<Vec<T>, String> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(f(item)?);
    }
    Ok(out)
}

/// Decodes the response of `POST …/snapshot`.
pub fn snapshot_created<J: Json>(obj: &J) -> Result<SnapshotCreated<J>, String> {
    if !obj.is_object() {
        return Err("the snapshot response must be a JSON object".into());
    }
    Ok(SnapshotCreated {
        snapshot_id: id_of(obj, Key::SnapshotId)
            .ok_or("snapshot response has no \"snapshot_id\"")?,
        status: string(obj, Key::Status).ok_or("snapshot response has no \"status\"")?,
    })
}

/// Decodes a sandbox object, or the response of `POST …/sandboxes`.
pub fn sandbox<J: Json>(obj: &J) -> Result<SandboxRecord<J>, String> {
    if !obj.is_object() {
        return Err("a sandbox must be a JSON object".into());
    }
    let resources = obj.get(Key::Resources);
    let resource = |key: Key| resources.as_ref().and_then(|r| number(r, key));
    Ok(SandboxRecord {
        sandbox_id: id_of(obj, Key::SandboxId).ok_or("sandbox has no \"id\" or \"sandbox_id\"")?,
        namespace: string(obj, Key::Namespace),
        status: string(obj, Key::Status).ok_or("sandbox has no \"status\"")?,
        image: string(obj, Key::Image),
        cpus: resource(Key::Cpus),
        memory_mb: resource(Key::MemoryMb),
        // Servers disagree on the name (wire-protocol §3.3); either will do.
        disk_mb: resource(Key::DiskMb).or_else(|| resource(Key::EphemeralDiskMb)),
        sandbox_url: string(obj, Key::SandboxUrl),
        routing_hint: string(obj, Key::RoutingHint),
        name: string(obj, Key::Name),
        timeout_secs: number(obj, Key::TimeoutSecs),
        entrypoint: obj.get(Key::Entrypoint).filter(|e| e.elements().is_some()),
        termination_reason: string(obj, Key::TerminationReason),
        error_details: obj.get(Key::ErrorDetails),
        created_at_ms: timestamp(obj, Key::CreatedAt),
        terminated_at_ms: timestamp(obj, Key::TerminatedAt),
        raw: obj.clone(),
    })
}

/// Decodes `{"sandboxes": [...]}`.
pub fn sandbox_list<J: Json>(body: &J) -> Result<Vec<SandboxRecord<J>>, String> {
    let items = body
        .get(Key::Sandboxes)
        .or_else(|| body.get(Key::Items))
        .and_then(|list| list.elements())
        .ok_or("expected an object with a \"sandboxes\" array")?;
    try_map(&items, sandbox)
}

/// Decodes `{"path": "...", "entries": [...]}`.
pub fn directory<J: Json>(body: &J) -> Result<Vec<DirEntry<J>>, String> {
    let items = body
        .get(Key::Entries)
        .and_then(|list| list.elements())
        .ok_or("expected an object with an \"entries\" array")?;
    try_map(&items, |entry| {
        if !entry.is_object() {
            return Err("a directory entry must be a JSON object".to_string());
        }
        Ok(DirEntry {
            name: string(entry, Key::Name).ok_or_else(|| "directory entry has no \"name\"".to_string())?,
            is_dir: entry
                .field(Key::IsDir)
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            size: number(entry, Key::Size),
            modified_at_ms: timestamp(entry, Key::ModifiedAt),
        })
    })
}

/// Pulls a human-readable message out of a sandbox's `error_details` (wire-protocol §3.5), falling
/// back to `termination_reason`.
pub fn termination_detail<J: Json>(record: &SandboxRecord<J>) -> Option<String> {
    if let Some(details) = &record.error_details {
        if let Some(text) = details.as_string() {
            return Some(text);
        }
        for key in [Key::Message, Key::Detail, Key::Error, Key::Reason] {
            if let Some(text) = details.get(key).and_then(|v| v.as_string()) {
                return Some(text);
            }
        }
    }
    record
        .termination_reason
        .as_ref()
        .and_then(|r| r.as_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::parse;

    #[test]
    fn decodes_the_reference_server_snapshot() {
        let obj = parse(
            r#"{"id":"snap-1","namespace":"default","sandbox_id":"sbx-1","base_image":"tensorlake/ubuntu-minimal",
                "status":"completed","error":null,"snapshot_type":"filesystem","snapshot_uri":"s3://b/k.tar.zst",
                "snapshot_format_version":"v2","size_bytes":123456,"rootfs_disk_bytes":10737418240,
                "created_at":1796040000000}"#,
        );
        let rec = snapshot(&obj).unwrap();
        assert_eq!(rec.snapshot_id, "snap-1");
        assert_eq!(rec.namespace.unwrap(), "default");
        assert_eq!(rec.sandbox_id.unwrap(), "sbx-1");
        assert_eq!(rec.status, "completed");
        assert_eq!(rec.error, None);
        assert_eq!(rec.snapshot_type.unwrap(), "filesystem");
        assert_eq!(rec.snapshot_uri.unwrap(), "s3://b/k.tar.zst");
        assert_eq!(rec.size_bytes, Some(123456.0));
        assert_eq!(rec.rootfs_disk_bytes, Some(10737418240.0));
        assert_eq!(rec.created_at_ms, Some(1_796_040_000_000.0));
    }

    #[test]
    fn tolerates_the_shapes_other_servers_send() {
        let rec = snapshot(&parse(
            r#"{"snapshot_id":"s","status":"replicating","created_at":"2026-11-30T10:00:00Z","future_field":{"x":1},
                "size_bytes":"12","error":5}"#,
        ))
        .unwrap();
        assert_eq!(rec.snapshot_id, "s");
        assert_eq!(
            rec.status, "replicating",
            "unknown statuses are kept verbatim"
        );
        assert_eq!(rec.created_at_ms, Some(1_796_032_800_000.0));
        assert_eq!(
            rec.size_bytes, None,
            "a size of the wrong type is dropped, not fatal"
        );
        assert_eq!(rec.error, None);
        assert_eq!(rec.namespace, None);

        let seconds = snapshot(&parse(
            r#"{"id":"s","status":"in_progress","created_at":1796040000}"#,
        ))
        .unwrap();
        assert_eq!(seconds.created_at_ms, Some(1_796_040_000_000.0));
        let micros = snapshot(&parse(
            r#"{"id":"s","status":"in_progress","created_at":1796040000000000}"#,
        ))
        .unwrap();
        assert_eq!(micros.created_at_ms, Some(1_796_040_000_000.0));
    }

    #[test]
    fn refuses_what_cannot_be_used() {
        assert!(snapshot(&parse(r#"{"status":"completed"}"#))
            .unwrap_err()
            .contains("id"));
        assert!(snapshot(&parse(r#"{"id":"s"}"#))
            .unwrap_err()
            .contains("status"));
        assert!(snapshot(&parse(r#"["not","an","object"]"#)).is_err());
        assert!(snapshot_list(&parse(r#"{"data":[]}"#))
            .unwrap_err()
            .contains("snapshots"));
    }

    #[test]
    fn lists_accept_snapshots_or_items() {
        let list = snapshot_list(&parse(
            r#"{"snapshots":[{"id":"a","status":"completed"},{"id":"b","status":"failed"}]}"#,
        ))
        .unwrap();
        assert_eq!(list.len(), 2);
        assert_eq!(list[1].snapshot_id, "b");
        let items = snapshot_list(&parse(
            r#"{"items":[{"snapshot_id":"c","status":"completed"}]}"#,
        ))
        .unwrap();
        assert_eq!(items[0].snapshot_id, "c");
    }

    #[test]
    fn decodes_sandboxes_with_either_disk_key() {
        let rec = sandbox(&parse(
            r#"{"id":"sbx-1","namespace":"default","status":"running",
                "resources":{"cpus":4.0,"memory_mb":2048,"ephemeral_disk_mb":10240},
                "sandbox_url":"http://127.0.0.1:8900","created_at":1796040000000,"entrypoint":["sh"]}"#,
        ))
        .unwrap();
        assert_eq!(rec.sandbox_id, "sbx-1");
        assert_eq!(rec.cpus, Some(4.0));
        assert_eq!(rec.memory_mb, Some(2048.0));
        assert_eq!(rec.disk_mb, Some(10240.0));
        assert_eq!(rec.sandbox_url.unwrap(), "http://127.0.0.1:8900");
        assert!(rec.entrypoint.is_some());

        let created = sandbox(&parse(r#"{"sandbox_id":"sbx-2","status":"pending"}"#)).unwrap();
        assert_eq!(created.sandbox_id, "sbx-2");
        assert_eq!(created.cpus, None);
    }

    #[test]
    fn termination_detail_prefers_error_details() {
        let rec = sandbox(&parse(
            r#"{"sandbox_id":"s","status":"terminated","termination_reason":"oom","error_details":{"message":"image pull failed"}}"#,
        ))
        .unwrap();
        assert_eq!(termination_detail(&rec).unwrap(), "image pull failed");
        let rec = sandbox(&parse(
            r#"{"sandbox_id":"s","status":"terminated","termination_reason":"oom"}"#,
        ))
        .unwrap();
        assert_eq!(termination_detail(&rec).unwrap(), "oom");
    }

    #[test]
    fn directory_listing() {
        let entries = directory(&parse(
            r#"{"path":"/data","entries":[{"name":"output.csv","is_dir":false,"size":4,"modified_at":1796040000000},{"name":"sub","is_dir":true}]}"#,
        ))
        .unwrap();
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].name, "output.csv");
        assert_eq!(entries[0].size, Some(4.0));
        assert!(entries[1].is_dir);
    }
}
