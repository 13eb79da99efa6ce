//! Decoded records as the plain JS objects the API returns (camelCase keys, `Date` timestamps,
//! `undefined` for absent fields). Every object of a kind gets every key, in the same order, so
//! the engine gives them one shape and code reading them stays fast.

use js_sys::{Array, Date, Object, Reflect};
use wasm_bindgen::prelude::wasm_bindgen;
use wasm_bindgen::{JsCast, JsValue};

use tensorlake_snapshots_core::models::{DirEntry, SandboxRecord, SnapshotCreated, SnapshotRecord};
use tensorlake_snapshots_core::sse::CommandOutput;

use crate::wasm::js_json::JsJson;

/// Output property names, created once as JS strings.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Prop {
    SnapshotId,
    Namespace,
    SandboxId,
    Status,
    CreatedAt,
    Image,
    Resources,
    Cpus,
    MemoryMb,
    DiskMb,
    SandboxUrl,
    RoutingHint,
    Name,
    TimeoutSecs,
    Entrypoint,
    TerminationReason,
    ErrorDetails,
    TerminatedAt,
    IsDir,
    Size,
    ModifiedAt,
    ExitCode,
    Stdout,
    Stderr,
}

const PROP_NAMES: [&str; 24] = [
    "snapshotId",
    "namespace",
    "sandboxId",
    "status",
    "createdAt",
    "image",
    "resources",
    "cpus",
    "memoryMb",
    "diskMb",
    "sandboxUrl",
    "routingHint",
    "name",
    "timeoutSecs",
    "entrypoint",
    "terminationReason",
    "errorDetails",
    "terminatedAt",
    "isDir",
    "size",
    "modifiedAt",
    "exitCode",
    "stdout",
    "stderr",
];

thread_local! {
    static PROPS: Vec<JsValue> = PROP_NAMES.iter().map(|n| JsValue::from_str(n)).collect();
}

struct Builder {
    object: Object,
}

impl Builder {
    fn new() -> Builder {
        Builder { object: Object::new() }
    }
    fn set(self, prop: Prop, value: &JsValue) -> Builder {
        PROPS.with(|props| {
            if let Some(key) = props.get(prop as usize) {
                // Setting a plain property on a fresh object cannot throw.
                let _ = Reflect::set(&self.object, key, value);
            }
        });
        self
    }
    fn opt(self, prop: Prop, value: &Option<JsJson>) -> Builder {
        match value {
            Some(v) => self.set(prop, v),
            None => self.set(prop, &JsValue::UNDEFINED),
        }
    }
    fn num(self, prop: Prop, value: Option<f64>) -> Builder {
        match value {
            Some(n) => self.set(prop, &JsValue::from_f64(n)),
            None => self.set(prop, &JsValue::UNDEFINED),
        }
    }
    fn date(self, prop: Prop, ms: Option<f64>) -> Builder {
        match ms {
            Some(ms) => self.set(prop, &Date::new(&JsValue::from_f64(ms))),
            None => self.set(prop, &JsValue::UNDEFINED),
        }
    }
    fn done(self) -> JsValue {
        self.object.into()
    }
}

#[wasm_bindgen(module = "/js/records.js")]
extern "C" {
    #[wasm_bindgen(js_name = snapshotInfo)]
    #[allow(clippy::too_many_arguments)]
    fn snapshot_info(
        snapshot_id: JsValue,
        namespace: Option<JsValue>,
        sandbox_id: Option<JsValue>,
        base_image: Option<JsValue>,
        status: JsValue,
        snapshot_type: Option<JsValue>,
        error: Option<JsValue>,
        snapshot_uri: Option<JsValue>,
        snapshot_format_version: Option<JsValue>,
        size_bytes: Option<f64>,
        rootfs_disk_bytes: Option<f64>,
        created_at_ms: Option<f64>,
    ) -> JsValue;
}

/// `SnapshotInfo`, consuming the record: its JS values move into the object without a copy.
pub fn snapshot(rec: SnapshotRecord<JsJson>) -> JsValue {
    // `.map(JsValue::from)` only unwraps the newtype: no copy, the JS values move as they are.
    snapshot_info(
        rec.snapshot_id.0,
        rec.namespace.map(JsValue::from),
        rec.sandbox_id.map(JsValue::from),
        rec.base_image.map(JsValue::from),
        rec.status.0,
        rec.snapshot_type.map(JsValue::from),
        rec.error.map(JsValue::from),
        rec.snapshot_uri.map(JsValue::from),
        rec.snapshot_format_version.map(JsValue::from),
        rec.size_bytes,
        rec.rootfs_disk_bytes,
        rec.created_at_ms,
    )
}

/// `SnapshotInfo[]`.
pub fn snapshots(list: Vec<SnapshotRecord<JsJson>>) -> JsValue {
    let array = Array::new_with_length(list.len() as u32);
    for (i, rec) in list.into_iter().enumerate() {
        array.set(i as u32, snapshot(rec));
    }
    array.into()
}

/// `{ snapshotId, status }`.
pub fn snapshot_created(created: &SnapshotCreated<JsJson>) -> JsValue {
    Builder::new().set(Prop::SnapshotId, &created.snapshot_id).set(Prop::Status, &created.status).done()
}

/// `SandboxInfo`: every field the server sent, camelCased (`crate::wasm::plain`), with the
/// decoded ones below set over them in their documented types.
pub fn sandbox(rec: &SandboxRecord<JsJson>) -> JsValue {
    let all = crate::wasm::plain::plain(&rec.raw);
    let _ = Reflect::delete_property(all.unchecked_ref::<Object>(), &"id".into());
    let resources = Reflect::get(&all, &"resources".into()).ok().filter(|r| r.is_object()).unwrap_or_else(|| Object::new().into());
    let resources = Builder { object: resources.unchecked_into() };
    let resources = resources.num(Prop::Cpus, rec.cpus).num(Prop::MemoryMb, rec.memory_mb).num(Prop::DiskMb, rec.disk_mb).done();
    Builder { object: all.unchecked_into() }
        .set(Prop::SandboxId, &rec.sandbox_id)
        .opt(Prop::Namespace, &rec.namespace)
        .set(Prop::Status, &rec.status)
        .opt(Prop::Image, &rec.image)
        .set(Prop::Resources, &resources)
        .opt(Prop::SandboxUrl, &rec.sandbox_url)
        .opt(Prop::RoutingHint, &rec.routing_hint)
        .opt(Prop::Name, &rec.name)
        .num(Prop::TimeoutSecs, rec.timeout_secs)
        .opt(Prop::Entrypoint, &rec.entrypoint)
        .opt(Prop::TerminationReason, &rec.termination_reason)
        .opt(Prop::ErrorDetails, &rec.error_details)
        .date(Prop::CreatedAt, rec.created_at_ms)
        .date(Prop::TerminatedAt, rec.terminated_at_ms)
        .done()
}

/// `SandboxInfo[]`.
pub fn sandboxes(list: &[SandboxRecord<JsJson>]) -> JsValue {
    list.iter().map(sandbox).collect::<Array>().into()
}

/// `DirectoryEntry[]`.
pub fn directory(entries: &[DirEntry<JsJson>]) -> JsValue {
    entries
        .iter()
        .map(|e| {
            Builder::new()
                .set(Prop::Name, &e.name)
                .set(Prop::IsDir, &JsValue::from_bool(e.is_dir))
                .num(Prop::Size, e.size)
                .date(Prop::ModifiedAt, e.modified_at_ms)
                .done()
        })
        .collect::<Array>()
        .into()
}

/// `CommandResult`.
pub fn command(out: &CommandOutput) -> JsValue {
    Builder::new()
        .set(Prop::ExitCode, &JsValue::from_f64(out.exit_code))
        .set(Prop::Stdout, &JsValue::from_str(&out.stdout))
        .set(Prop::Stderr, &JsValue::from_str(&out.stderr))
        .done()
}
