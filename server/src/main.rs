//! tensorlake-local: a Tensorlake-compatible sandbox and snapshot API on loopback, with real
//! sandboxes jailed by bubblewrap, real snapshot archives, and SQLite durability.
//!
//! Start-up order matters: the data directory is locked (one server per directory), the
//! database is loaded and repaired (see `state::recover`), and only then is the port bound and
//! the `listening on` line printed, so a test that reads that line can use the server at once.

mod archive;
mod archive_limits;
mod auth;
mod config;
mod conn_limit;
mod cors;
mod datadir;
mod dirwalk;
mod faults;
mod fsx;
mod gateway;
mod http;
mod image;
mod isolation;
mod jail;
mod lifetimes;
mod model;
mod netpolicy;
mod pools;
mod proc_output;
mod proc_signal;
mod proc_supervise;
mod procs;
mod reqlog;
mod routes;
mod sandbox_tree;
mod state;
mod store;
mod tarwrite;
mod unpack;
mod unpack_data;

use std::io::Write;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;

use crate::config::Args;
use crate::state::{recover, AppState, Paths};
use crate::store::Store;

fn main() -> ExitCode {
    if let Some(code) = isolation::reaper::run_if_asked() {
        return code;
    }
    // Before the runtime starts its threads: everything the server creates is private to its user.
    datadir::set_private_umask();
    let args = Args::parse();
    if let Err(e) = args.check(std::env::var_os("TENSORLAKE_LOCAL_API_KEY").as_deref()) {
        eprintln!("tensorlake-local: {e}");
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("tensorlake-local: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tensorlake-local: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    if let Some(dir) = &args.static_dir {
        if !dir.is_dir() {
            return Err(format!("--static {}: not a directory", dir.display()));
        }
    }
    std::fs::create_dir_all(&args.data_dir).map_err(|e| {
        format!(
            "cannot create the data directory {}: {e}",
            args.data_dir.display()
        )
    })?;
    let data = args.data_dir.canonicalize().map_err(|e| {
        format!(
            "cannot resolve the data directory {}: {e}",
            args.data_dir.display()
        )
    })?;
    datadir::check_usable(&data)?;
    let paths = Paths::new(data);
    for dir in [&paths.sandboxes, &paths.snapshots, &paths.tmp] {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    // Two servers on one data directory would corrupt each other's view; the lock is released
    // by the kernel however this process ends, SIGKILL included.
    let lock = lock_data_dir(&paths)?;
    // Before the database opens, so its -wal and -shm files take the database file's mode.
    let tightened = datadir::tighten(&paths.data)?;
    if tightened > 0 {
        eprintln!(
            "tensorlake-local: made {tightened} entries of the data directory private (0700 directories, 0600 files)"
        );
    }

    let orphans = jail::kill_orphans(&paths.sandboxes);
    let iso = isolation::Isolation::start(&paths, args.max_pids_per_sandbox);
    let (store, loaded) = Store::open(&paths.data.join("state.sqlite"))?;
    let (registry, report) = recover(loaded, &paths, &store);
    iso.adopt(&registry, &paths);
    iso.start_reaper(lock.as_raw_fd())?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", args.port))
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1:{}: {e}", args.port))?;
    let port = listener.local_addr().map_err(|e| e.to_string())?.port();

    let jail = jail::Jail::new(iso);
    let st = Arc::new(AppState::new(args, port, paths, store, registry, jail));
    let app = routes::router(st.clone());
    // Pools found on disk get their warm sandboxes back (and are kept topped up from now on).
    pools::start(&st);
    lifetimes::arm_all(&st);

    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "tensorlake-local listening on http://127.0.0.1:{port}");
        let _ = out.flush();
    }
    eprintln!(
        "tensorlake-local: data in {} ({} live sandboxes; {} interrupted snapshots marked failed; {} leftover files removed)",
        st.paths.data.display(),
        report.sandboxes_live,
        report.snapshots_failed,
        report.files_removed
    );
    if orphans > 0 {
        eprintln!(
            "tensorlake-local: killed {orphans} orphaned sandbox processes left by a previous run"
        );
    }
    for line in st.jail.iso.summary() {
        eprintln!("tensorlake-local: isolation: {line}");
    }
    if st.args.api_key.is_some() {
        eprintln!("tensorlake-local: API key required on API and process routes");
    }
    let st_check = st.clone();
    tokio::spawn(async move {
        if let Err(e) = st_check.jail.ready().await {
            eprintln!("tensorlake-local: warning: {e}");
        }
    });

    let shutdown_state = st.clone();
    // A bounded number of connections (see `conn_limit`); `tap_io` only gives the wrapped
    // listener axum's `ConnectInfo<SocketAddr>`.
    let listener = axum::serve::ListenerExt::tap_io(
        conn_limit::Capped::new(listener, conn_limit::connection_budget()),
        |_| {},
    );
    axum::serve(
        listener,
        app.into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        shutdown_signal().await;
        eprintln!("tensorlake-local: stopping");
        shutdown_state.procs.kill_everything();
        // Streams still open must not hold the exit forever; what was promised is still
        // written first.
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_secs(3)).await;
            shutdown_state.quiesce().await;
            shutdown_state.jail.iso.shutdown();
            std::process::exit(0);
        });
    })
    .await
    .map_err(|e| format!("server error: {e}"))?;
    st.quiesce().await;
    st.jail.iso.shutdown();
    drop(lock);
    Ok(())
}

/// Takes an exclusive `flock` on `<data>/lock`.
fn lock_data_dir(paths: &Paths) -> Result<std::fs::File, String> {
    let path = paths.data.join("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    // The clean-up process of a server that just exited holds the lock until its sandboxes'
    // mounts are gone (a fraction of a second), so a restart waits briefly for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    let rc = loop {
        // SAFETY: flock on a descriptor we own.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
        if rc == 0 || std::time::Instant::now() >= deadline {
            break rc;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    if rc != 0 {
        return Err(format!(
            "another tensorlake-local is already using {} (stop it, or pass a different --data-dir)",
            paths.data.display()
        ));
    }
    Ok(file)
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
