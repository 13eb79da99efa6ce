//! SQLite persistence: the write-through half of "metadata in memory, write-through to SQLite".
//!
//! All reads are served from memory (`state.rs`); this module only loads the tables at startup and
//! applies changes afterwards. Changes go to one writer thread over a channel, in the order the
//! in-memory registry made them (senders hold the registry lock while sending), and the writer
//! commits whatever has queued up as one transaction: concurrent requests share one fsync (group
//! commit). A request that creates or deletes something waits for its commit before answering,
//! so an answer the client saw is never lost by a crash.

use std::path::Path;
use std::sync::mpsc;
use std::thread;

use rusqlite::{params, Connection};
use tokio::sync::oneshot;

use crate::model::{Sandbox, Snapshot};
use crate::pools::Pool;

/// The schema version this build writes; an unknown newer version is refused at startup.
const SCHEMA_VERSION: i64 = 1;

/// One change to persist.
#[derive(Debug)]
pub enum Op {
    /// Insert or replace a sandbox row.
    PutSandbox(Sandbox),
    /// Insert or replace a snapshot row.
    PutSnapshot(Snapshot),
    /// Insert many snapshot rows (seeding).
    PutSnapshots(Vec<Snapshot>),
    /// Remove a snapshot row.
    DeleteSnapshot(String),
    /// Insert or replace a sandbox pool row.
    PutPool(Pool),
    /// Remove a sandbox pool row.
    DeletePool(String),
}

struct Batch {
    ops: Vec<Op>,
    done: Option<oneshot::Sender<Result<(), String>>>,
}

/// Handle to the writer thread. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    tx: mpsc::Sender<Batch>,
}

/// Everything on disk at startup.
pub struct Loaded {
    /// Sandbox rows.
    pub sandboxes: Vec<Sandbox>,
    /// Snapshot rows, in `seq` order.
    pub snapshots: Vec<Snapshot>,
    /// Sandbox pool rows.
    pub pools: Vec<Pool>,
}

impl Store {
    /// Opens (creating if needed) `path`, loads every row, and starts the writer thread.
    pub fn open(path: &Path) -> Result<(Store, Loaded), String> {
        let conn =
            Connection::open(path).map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        // WAL: readers never block the writer, and a commit is one sequential append.
        // synchronous=FULL: a commit is fsynced before it is acknowledged, so what a client was
        // told survives even a power cut; group commit keeps that affordable.
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             PRAGMA synchronous=FULL;
             PRAGMA foreign_keys=OFF;
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS sandboxes (
                 id TEXT PRIMARY KEY,
                 namespace TEXT NOT NULL,
                 data TEXT NOT NULL
             );
             CREATE TABLE IF NOT EXISTS snapshots (
                 id TEXT PRIMARY KEY,
                 seq INTEGER NOT NULL,
                 namespace TEXT NOT NULL,
                 sandbox_id TEXT NOT NULL,
                 archive TEXT,
                 data TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS snapshots_seq ON snapshots(seq);
             CREATE TABLE IF NOT EXISTS pools (
                 id TEXT PRIMARY KEY,
                 namespace TEXT NOT NULL,
                 data TEXT NOT NULL
             );",
        )
        .map_err(|e| format!("cannot initialise {}: {e}", path.display()))?;
        let version: Option<String> = conn
            .query_row(
                "SELECT value FROM meta WHERE key='schema_version'",
                [],
                |r| r.get(0),
            )
            .ok();
        match version.as_deref().map(str::parse::<i64>) {
            None => {
                conn.execute(
                    "INSERT INTO meta(key, value) VALUES('schema_version', ?1)",
                    params![SCHEMA_VERSION.to_string()],
                )
                .map_err(|e| e.to_string())?;
            }
            Some(Ok(v)) if v == SCHEMA_VERSION => {}
            Some(v) => {
                return Err(format!(
                    "{} has schema version {v:?}; this build understands {SCHEMA_VERSION}",
                    path.display()
                ))
            }
        }
        let loaded = load(&conn)?;
        let (tx, rx) = mpsc::channel::<Batch>();
        thread::Builder::new()
            .name("sqlite-writer".into())
            .spawn(move || writer(conn, rx))
            .map_err(|e| format!("cannot start the SQLite writer thread: {e}"))?;
        Ok((Store { tx }, loaded))
    }

    /// Queues changes without waiting for their commit (state transitions a crash may redo).
    pub fn send(&self, ops: Vec<Op>) {
        let _ = self.tx.send(Batch { ops, done: None });
    }

    /// Queues changes and returns a receiver that resolves once they are committed.
    ///
    /// Call while holding the registry lock (so the order matches memory), await after releasing.
    pub fn send_acked(&self, ops: Vec<Op>) -> oneshot::Receiver<Result<(), String>> {
        let (done, rx) = oneshot::channel();
        if let Err(mpsc::SendError(batch)) = self.tx.send(Batch {
            ops,
            done: Some(done),
        }) {
            if let Some(done) = batch.done {
                let _ = done.send(Err("the SQLite writer has stopped".into()));
            }
        }
        rx
    }
}

/// Awaits a commit acknowledgement from [`Store::send_acked`].
pub async fn committed(rx: oneshot::Receiver<Result<(), String>>) -> Result<(), String> {
    rx.await
        .unwrap_or_else(|_| Err("the SQLite writer has stopped".into()))
}

fn load(conn: &Connection) -> Result<Loaded, String> {
    Ok(Loaded {
        sandboxes: load_rows(conn, "SELECT id, data FROM sandboxes", "sandbox")?,
        snapshots: load_rows(
            conn,
            "SELECT id, data FROM snapshots ORDER BY seq",
            "snapshot",
        )?,
        pools: load_rows(conn, "SELECT id, data FROM pools", "sandbox pool")?,
    })
}

/// Reads `(id, data)` rows as JSON records. One unreadable row must not take every other record
/// down with it: it is skipped with a message naming it.
fn load_rows<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    sql: &str,
    kind: &str,
) -> Result<Vec<T>, String> {
    let mut stmt = conn.prepare(sql).map_err(|e| e.to_string())?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))
        .map_err(|e| e.to_string())?;
    let mut records = Vec::new();
    for row in rows {
        let (id, data) = row.map_err(|e| e.to_string())?;
        match serde_json::from_str::<T>(&data) {
            Ok(record) => records.push(record),
            Err(e) => eprintln!("tensorlake-local: skipping unreadable {kind} row {id}: {e}"),
        }
    }
    Ok(records)
}

fn writer(mut conn: Connection, rx: mpsc::Receiver<Batch>) {
    // For the crash tests only: a slow disk, so a test can kill the server between a change in
    // memory and its commit (the window every acknowledged change must not have).
    let delay = std::env::var("TENSORLAKE_LOCAL_TEST_COMMIT_DELAY_MS")
        .ok()
        .and_then(|ms| ms.parse().ok())
        .map(std::time::Duration::from_millis);
    while let Ok(first) = rx.recv() {
        if let Some(delay) = delay {
            thread::sleep(delay);
        }
        let mut batches = vec![first];
        // Group commit: everything already queued rides in the same transaction.
        while batches.len() < 512 {
            match rx.try_recv() {
                Ok(b) => batches.push(b),
                Err(_) => break,
            }
        }
        let result = apply(&mut conn, &batches).map_err(|e| e.to_string());
        if let Err(e) = &result {
            eprintln!("tensorlake-local: SQLite write failed: {e}");
        }
        for b in batches {
            if let Some(done) = b.done {
                let _ = done.send(result.clone());
            }
        }
    }
}

fn apply(conn: &mut Connection, batches: &[Batch]) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    {
        let mut put_sandbox = tx.prepare_cached(
            "INSERT OR REPLACE INTO sandboxes(id, namespace, data) VALUES(?1, ?2, ?3)",
        )?;
        let mut put_snapshot = tx.prepare_cached(
            "INSERT OR REPLACE INTO snapshots(id, seq, namespace, sandbox_id, archive, data)
             VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
        )?;
        let mut del_snapshot = tx.prepare_cached("DELETE FROM snapshots WHERE id = ?1")?;
        let mut put_pool = tx.prepare_cached(
            "INSERT OR REPLACE INTO pools(id, namespace, data) VALUES(?1, ?2, ?3)",
        )?;
        let mut del_pool = tx.prepare_cached("DELETE FROM pools WHERE id = ?1")?;
        let mut put = |s: &Snapshot| -> rusqlite::Result<()> {
            let data = serde_json::to_string(s).unwrap_or_default();
            put_snapshot.execute(params![
                s.id,
                s.seq,
                s.namespace,
                s.sandbox_id,
                s.archive,
                data
            ])?;
            Ok(())
        };
        for batch in batches {
            for op in &batch.ops {
                match op {
                    Op::PutSandbox(s) => {
                        let data = serde_json::to_string(s).unwrap_or_default();
                        put_sandbox.execute(params![s.id, s.namespace, data])?;
                    }
                    Op::PutSnapshot(s) => put(s)?,
                    Op::PutSnapshots(list) => {
                        for s in list {
                            put(s)?;
                        }
                    }
                    Op::DeleteSnapshot(id) => {
                        del_snapshot.execute(params![id])?;
                    }
                    Op::PutPool(p) => {
                        let data = serde_json::to_string(p).unwrap_or_default();
                        put_pool.execute(params![p.id, p.namespace, data])?;
                    }
                    Op::DeletePool(id) => {
                        del_pool.execute(params![id])?;
                    }
                }
            }
        }
    }
    tx.commit()
}
