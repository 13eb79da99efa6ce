//! Sandbox pools: a stored sandbox configuration plus a number of warm sandboxes kept ready so a
//! claim is a bookkeeping change instead of a create.
//!
//! Warm sandboxes are ordinary sandboxes made by `sandboxes::create_record` (so each has its own
//! uid, cgroups and disk image like any other), marked with their pool and `pool_warm`. A claim
//! clears `pool_warm` and the pool is topped up again in the background. Everything is derived
//! from the sandbox records, so a restart needs no extra state: the periodic top-up re-creates
//! whatever warm sandboxes are missing.

use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::http::ApiError;
use crate::model::{now_ms, Sandbox, Stage};
use crate::lifetimes::terminate;
use crate::routes::sandboxes::create_record;
use crate::state::{AppState, Registry};
use crate::store::{committed, Op};

/// Most warm sandboxes one pool may ask for: each is a real sandbox with a disk image, so an
/// unbounded number would let one request fill the machine.
pub const MAX_WARM: i64 = 16;
/// Most pools the server keeps (all namespaces together), for the same reason.
pub const MAX_POOLS: usize = 64;
/// How often every pool is topped up even when nothing asked (restarts, timed-out sandboxes).
const REFILL_EVERY: Duration = Duration::from_secs(2);

/// One sandbox pool as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Pool {
    /// Server-issued id.
    pub id: String,
    /// Namespace it was created in.
    pub namespace: String,
    /// Image of its sandboxes.
    pub image: String,
    /// CPUs of its sandboxes.
    pub cpus: f64,
    /// Memory of its sandboxes.
    pub memory_mb: i64,
    /// Disk of its sandboxes.
    pub disk_mb: i64,
    /// Lifetime of its sandboxes (0: none).
    pub timeout_secs: i64,
    /// Entrypoint of its sandboxes.
    pub entrypoint: Option<Vec<String>>,
    /// Most live sandboxes (warm and claimed) at once; `None`: no limit.
    pub max_containers: Option<i64>,
    /// Warm sandboxes to keep ready; `None`: none.
    pub warm_containers: Option<i64>,
    /// Network policy as sent.
    pub network: Option<Value>,
    /// Creation instant (epoch ms).
    pub created_at: i64,
    /// Last update instant (epoch ms).
    pub updated_at: i64,
}

impl Pool {
    /// The SandboxPoolInfo object the SDKs read; `containers` only on a single-pool GET.
    pub fn to_json(&self, containers: Option<Vec<Value>>) -> Value {
        let mut v = json!({
            "id": self.id,
            "namespace": self.namespace,
            "image": self.image,
            "resources": {
                "cpus": self.cpus,
                "memory_mb": self.memory_mb,
                "disk_mb": self.disk_mb,
                "ephemeral_disk_mb": self.disk_mb,
            },
            "timeout_secs": self.timeout_secs,
            "entrypoint": self.entrypoint,
            "max_containers": self.max_containers,
            "warm_containers": self.warm_containers,
            "network_policy": self.network,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        });
        if let (Some(list), Some(obj)) = (containers, v.as_object_mut()) {
            obj.insert("containers".into(), Value::Array(list));
        }
        v
    }

    /// The `POST /sandboxes` body that makes one of its sandboxes.
    fn create_body(&self) -> Vec<u8> {
        json!({
            "image": self.image,
            "resources": {
                "cpus": self.cpus,
                "memory_mb": self.memory_mb,
                "disk_mb": self.disk_mb,
            },
            "timeout_secs": self.timeout_secs,
            "entrypoint": self.entrypoint,
            "network": self.network,
        })
        .to_string()
        .into_bytes()
    }

    /// Whether sandboxes made from `self` and from `other` would differ.
    pub fn same_sandboxes(&self, other: &Pool) -> bool {
        self.image == other.image
            && self.cpus == other.cpus
            && self.memory_mb == other.memory_mb
            && self.disk_mb == other.disk_mb
            && self.timeout_secs == other.timeout_secs
            && self.entrypoint == other.entrypoint
            && self.network == other.network
    }
}

/// The live (not terminated) sandboxes of a pool, oldest first.
pub fn members<'a>(reg: &'a Registry, pool_id: &str) -> Vec<&'a Sandbox> {
    let mut list: Vec<&Sandbox> = reg
        .sandboxes
        .values()
        .filter(|s| s.pool_id.as_deref() == Some(pool_id) && s.stage != Stage::Terminated)
        .collect();
    list.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    list
}

/// The `containers` list of a pool: its warm (`Idle`) and claimed (`Running`) sandboxes.
pub fn containers(reg: &Registry, pool_id: &str) -> Vec<Value> {
    members(reg, pool_id)
        .into_iter()
        .map(|s| {
            json!({
                "id": s.id,
                "state": if s.pool_warm { "Idle" } else { "Running" },
                "sandbox_id": if s.pool_warm { Value::Null } else { json!(s.id) },
                "executor_id": "local",
            })
        })
        .collect()
}

/// Live sandboxes of a pool plus those being created for it.
fn occupancy(reg: &Registry, pool_id: &str) -> (usize, usize, usize) {
    let list = members(reg, pool_id);
    let warm = list.iter().filter(|s| s.pool_warm).count();
    let pending = reg.pool_pending.get(pool_id).copied().unwrap_or(0);
    (warm, list.len() - warm, pending)
}

fn release_pending(st: &AppState, pool_id: &str) {
    let mut reg = st.reg();
    if let Some(n) = reg.pool_pending.get_mut(pool_id) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            reg.pool_pending.remove(pool_id);
        }
    }
}

/// Tops a pool up in the background.
pub fn refill_soon(st: &Arc<AppState>, pool_id: String) {
    let st = st.clone();
    tokio::spawn(async move { refill(&st, &pool_id).await });
}

/// Starts the periodic top-up of every pool (which is also what restores warm sandboxes after a
/// restart).
pub fn start(st: &Arc<AppState>) {
    let st = st.clone();
    tokio::spawn(async move {
        loop {
            let ids: Vec<String> = st.reg().pools.keys().cloned().collect();
            for id in ids {
                refill(&st, &id).await;
            }
            tokio::time::sleep(REFILL_EVERY).await;
        }
    });
}

/// Creates the warm sandboxes a pool lacks, within `max_containers`. Slots are reserved under the
/// lock first, so concurrent top-ups and claims never overshoot.
pub async fn refill(st: &Arc<AppState>, pool_id: &str) {
    // A warm sandbox that something suspended (a timeout) cannot be handed out: replace it.
    let parked: Vec<String> = members(&st.reg(), pool_id)
        .into_iter()
        .filter(|s| s.pool_warm && s.stage != Stage::Active)
        .map(|s| s.id.clone())
        .collect();
    for id in parked {
        let _ = terminate(
            st.clone(),
            id,
            "a warm pool sandbox was suspended; it was replaced",
            None,
        )
        .await;
    }
    let (pool, n) = {
        let mut reg = st.reg();
        let Some(pool) = reg.pools.get(pool_id).cloned() else {
            return;
        };
        let (warm, claimed, pending) = occupancy(&reg, pool_id);
        let target = pool.warm_containers.unwrap_or(0).max(0) as usize;
        let mut n = target.saturating_sub(warm + pending);
        if let Some(max) = pool.max_containers {
            let room = (max.max(0) as usize).saturating_sub(warm + claimed + pending);
            n = n.min(room);
        }
        if n > 0 {
            *reg.pool_pending.entry(pool_id.to_string()).or_default() += n;
        }
        (pool, n)
    };
    let body = pool.create_body();
    for _ in 0..n {
        let made = create_record(
            st,
            pool.namespace.clone(),
            &body,
            Some(pool.id.clone()),
            true,
        )
        .await;
        release_pending(st, pool_id);
        match made {
            Ok((sb, _)) => {
                // The pool may have been deleted or reconfigured while this one was made.
                let stale = st
                    .reg()
                    .pools
                    .get(pool_id)
                    .is_none_or(|p| !p.same_sandboxes(&pool));
                if stale {
                    let _ = terminate(st.clone(), sb.id.clone(), "its sandbox pool was deleted or changed", None).await;
                }
            }
            Err(e) => {
                eprintln!("tensorlake-local: warm sandbox for pool {pool_id} not created: {e:?}");
            }
        }
    }
}

/// Hands out a sandbox of pool `pool_id`: a warm one when there is one, else a new one within
/// `max_containers` (429 beyond). The pool is topped up again in the background.
pub async fn claim(
    st: &Arc<AppState>,
    ns: &str,
    pool_id: &str,
) -> Result<(Sandbox, &'static str), ApiError> {
    enum Plan {
        Warm(Sandbox, tokio::sync::oneshot::Receiver<Result<(), String>>),
        Create(Pool),
    }
    let plan = {
        let mut reg = st.reg();
        let pool = reg
            .pools
            .get(pool_id)
            .filter(|p| p.namespace == ns)
            .cloned()
            .ok_or_else(|| ApiError::not_found(format!("Sandbox pool not found: {pool_id}")))?;
        let warm_id = members(&reg, pool_id)
            .into_iter()
            .find(|s| s.pool_warm && s.stage == Stage::Active)
            .map(|s| s.id.clone());
        match warm_id.and_then(|id| reg.sandboxes.get_mut(&id)) {
            Some(sb) => {
                sb.pool_warm = false;
                // Its `timeout_secs` counts from the claim, not from when it was made warm.
                sb.resumed_at = Some(now_ms());
                let ack = st.store.send_acked(vec![Op::PutSandbox(sb.clone())]);
                Plan::Warm(sb.clone(), ack)
            }
            None => {
                let (warm, claimed, pending) = occupancy(&reg, pool_id);
                if let Some(max) = pool.max_containers {
                    let used = warm + claimed + pending;
                    if used as i64 >= max {
                        return Err(ApiError::Text(
                            StatusCode::TOO_MANY_REQUESTS,
                            format!(
                                "Sandbox pool {pool_id} is at its max_containers limit ({max}): \
                                 {claimed} claimed, {} being created; delete one of its sandboxes \
                                 or raise max_containers",
                                pending + warm
                            ),
                        ));
                    }
                }
                *reg.pool_pending.entry(pool_id.to_string()).or_default() += 1;
                Plan::Create(pool)
            }
        }
    };
    let result = match plan {
        Plan::Warm(sb, ack) => {
            committed(ack)
                .await
                .map_err(|e| ApiError::internal(format!("could not record the claim: {e}")))?;
            let status = st.reg().sandbox_status(&sb, now_ms());
            crate::lifetimes::arm(st.clone(), sb.id.clone());
            Ok((sb, status))
        }
        Plan::Create(pool) => {
            let made = create_record(
                st,
                pool.namespace.clone(),
                &pool.create_body(),
                Some(pool.id.clone()),
                false,
            )
            .await;
            release_pending(st, pool_id);
            made
        }
    };
    refill_soon(st, pool_id.to_string());
    result
}
