//! How a sandbox's processes stop and its life ends: freezing them (suspend), terminating it
//! (delete, timeout), and `timeout_secs`.
//!
//! `timeout_secs`: a sandbox that has run that long is suspended when it has a name (it can be
//! resumed, as the cloud does) and terminated otherwise, with `termination_reason` and `outcome`
//! `"timeout"`. The time counts from creation, or from the last resume.
//!
//! One timer per sandbox, armed at creation, at resume and for every live sandbox at start-up
//! (the deadline is recomputed from the stored times, so a restart neither forgets nor extends
//! it). A timer re-reads the sandbox when it fires and does nothing unless the deadline it
//! recomputes has passed, so a timer left from before a resume is harmless.

use std::sync::Arc;
use std::time::Duration;

use crate::model::{now_ms, Sandbox, Stage};
use crate::sandbox_tree::release_and_remove;
use crate::state::AppState;
use crate::store::{committed, Op};

/// What `termination_reason` and `outcome` say about a sandbox ended by its timeout.
pub const TIMEOUT_REASON: &str = "timeout";
/// The `outcome` a sandbox terminated by its timeout reports, spelled as the official TypeScript
/// SDK's integration tests read it. A suspended sandbox reports none: it has not ended.
pub const TIMEOUT_OUTCOME: &str = "Success(Timeout)";

/// The instant (epoch ms) at which `sb` times out, if it has a timeout and is running.
pub fn deadline(sb: &Sandbox) -> Option<i64> {
    let secs = sb.timeout_secs.filter(|t| *t > 0)?;
    // A warm pool sandbox waits for its claim, which starts its clock (see `pools::claim`).
    if sb.stage != Stage::Active || sb.pool_warm {
        return None;
    }
    let from = sb.resumed_at.unwrap_or(sb.created_at);
    Some(from.saturating_add(secs.saturating_mul(1000)))
}

/// What to do with a timed-out sandbox.
#[derive(Debug, PartialEq, Eq)]
enum Action {
    Suspend,
    Terminate,
}

/// Named sandboxes, and sandboxes claimed from a pool, are suspended (as the cloud does, and as
/// Tensorlake's own pool timeout tests expect); any other is terminated.
fn action(sb: &Sandbox) -> Action {
    if sb.name.is_some() || sb.pool_id.is_some() {
        Action::Suspend
    } else {
        Action::Terminate
    }
}

/// Arms the timer of sandbox `id` (nothing when it has no timeout).
pub fn arm(st: Arc<AppState>, id: String) {
    let Some(due) = st.reg().sandboxes.get(&id).and_then(deadline) else {
        return;
    };
    tokio::spawn(async move {
        let mut due = due;
        loop {
            let wait = (due - now_ms()).max(0) as u64;
            tokio::time::sleep(Duration::from_millis(wait)).await;
            let (next, snapshotting, act) = {
                let reg = st.reg();
                let Some(sb) = reg.sandboxes.get(&id) else {
                    return;
                };
                let busy = reg.sandbox_status(sb, now_ms()) == "snapshotting";
                (deadline(sb), busy, action(sb))
            };
            match next {
                None => return,
                Some(d) if d > now_ms() => {
                    // Resumed since: the newer timer owns it; this one only keeps it if equal.
                    if d != due {
                        return;
                    }
                    due = d;
                }
                // A snapshot being written keeps the sandbox until it is done.
                Some(_) if snapshotting => due = now_ms() + 200,
                Some(_) => {
                    let result = match act {
                        Action::Suspend => suspend(&st, &id).await,
                        Action::Terminate => {
                            terminate(st.clone(), id.clone(), TIMEOUT_REASON, Some(TIMEOUT_OUTCOME))
                                .await
                        }
                    };
                    if let Err(e) = result {
                        eprintln!("tensorlake-local: warning: timeout of sandbox {id}: {e}");
                    }
                    return;
                }
            }
        }
    });
}

/// Arms the timers of every live sandbox (start-up).
pub fn arm_all(st: &Arc<AppState>) {
    let ids: Vec<String> = st.reg().sandboxes.keys().cloned().collect();
    for id in ids {
        arm(st.clone(), id);
    }
}

async fn suspend(st: &Arc<AppState>, id: &str) -> Result<(), String> {
    let ack = {
        let mut reg = st.reg();
        let Some(sb) = reg.sandboxes.get_mut(id) else {
            return Ok(());
        };
        if sb.stage != Stage::Active {
            return Ok(());
        }
        sb.stage = Stage::Suspended;
        st.store.send_acked(vec![Op::PutSandbox(sb.clone())])
    };
    committed(ack).await?;
    set_network_running(st, id, false).await;
    freeze_processes(st, id, true).await;
    Ok(())
}

/// Stops (suspend) or restarts (resume) sandbox `id`'s way out (its slirp4netns); its policy
/// and namespace stay.
pub(crate) async fn set_network_running(st: &Arc<AppState>, id: &str, running: bool) {
    let (st2, id2) = (st.clone(), id.to_string());
    let done =
        tokio::task::spawn_blocking(move || st2.jail.iso.net.set_running(&id2, running)).await;
    if let Ok(Err(e)) = done {
        eprintln!("tensorlake-local: warning: network of sandbox {id}: {e}");
    }
}

/// Terminates sandbox `sandbox_id` (deleted, or past its `timeout_secs`): records it, then kills
/// its processes and removes its files in the background. Does nothing to one already terminated.
pub(crate) async fn terminate(
    st: Arc<AppState>,
    sandbox_id: String,
    reason: &str,
    outcome: Option<&str>,
) -> Result<(), String> {
    let (ack, pool_id) = {
        let mut reg = st.reg();
        let Some(sb) = reg.sandboxes.get_mut(&sandbox_id) else {
            return Ok(());
        };
        if sb.stage == Stage::Terminated {
            return Ok(());
        }
        sb.stage = Stage::Terminated;
        sb.terminated_at = Some(now_ms());
        sb.termination_reason = Some(reason.into());
        sb.outcome = outcome.map(str::to_string);
        (st.store.send_acked(vec![Op::PutSandbox(sb.clone())]), sb.pool_id.clone())
    };
    committed(ack).await?;
    // A pool sandbox's slot is free again: the pool is topped up.
    if let Some(pool_id) = pool_id {
        crate::pools::refill_soon(&st, pool_id);
    }
    st.snapshot_failures
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .remove(&sandbox_id);
    let st2 = st.clone();
    tokio::spawn(async move {
        // A frozen process cannot die.
        freeze_processes(&st2, &sandbox_id, false).await;
        st2.procs.stop_all(&sandbox_id).await;
        {
            let lock = st2.fs_lock(&sandbox_id);
            let _guard = lock.write().await;
            let (st3, id) = (st2.clone(), sandbox_id.clone());
            let _ = tokio::task::spawn_blocking(move || release_and_remove(&st3, &id)).await;
        }
        // A command launched in the instant before the deletion was recorded is stopped too.
        st2.procs.stop_all(&sandbox_id).await;
        st2.procs.forget(&sandbox_id);
        st2.forget_fs_lock(&sandbox_id);
    });
    Ok(())
}

/// Freezes (suspend) or thaws (resume, delete) the processes of sandbox `id`: the cgroup
/// freezer, or SIGSTOP/SIGCONT of each process tree where there is none.
pub(crate) async fn freeze_processes(st: &Arc<AppState>, id: &str, frozen: bool) {
    let (st2, id2) = (st.clone(), id.to_string());
    let done = tokio::task::spawn_blocking(move || st2.jail.iso.freeze(&id2, frozen)).await;
    match done {
        Ok(Ok(true)) => {}
        other => {
            if let Ok(Err(e)) = other {
                eprintln!("tensorlake-local: warning: cgroup freezer for {id}: {e}; using SIGSTOP/SIGCONT");
            }
            let (st2, id2) = (st.clone(), id.to_string());
            let _ = tokio::task::spawn_blocking(move || st2.procs.stop_trees(&id2, frozen)).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sb(name: Option<&str>, timeout: Option<i64>, resumed: Option<i64>) -> Sandbox {
        serde_json::from_value(serde_json::json!({
            "id": "sbx-1", "namespace": "default", "name": name, "image": "i", "cpus": 1.0,
            "memory_mb": 1, "disk_mb": 1, "timeout_secs": timeout, "entrypoint": null,
            "network": null, "allow_unauthenticated_access": false, "exposed_ports": [],
            "created_at": 1_000, "ready_at": 1_000, "stage": "active", "terminated_at": null,
            "termination_reason": null, "restored_from": null, "resumed_at": resumed,
        }))
        .unwrap()
    }

    #[test]
    fn the_deadline_counts_from_creation_or_the_last_resume() {
        assert_eq!(deadline(&sb(None, Some(30), None)), Some(31_000));
        assert_eq!(deadline(&sb(None, Some(30), Some(50_000))), Some(80_000));
        assert_eq!(deadline(&sb(None, None, None)), None);
        let mut s = sb(None, Some(30), None);
        s.stage = Stage::Suspended;
        assert_eq!(deadline(&s), None);
    }

    #[test]
    fn named_sandboxes_are_suspended_and_others_terminated() {
        assert_eq!(action(&sb(Some("n"), Some(1), None)), Action::Suspend);
        assert_eq!(action(&sb(None, Some(1), None)), Action::Terminate);
    }
}
