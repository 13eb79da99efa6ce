//! A bound on the connections the server holds open at once.
//!
//! Every connection costs a descriptor, and nothing stops a local user from opening thousands
//! that send nothing. Once the process's descriptor limit is reached, every other thing the
//! server does that needs one fails too: archives, restores, the database, starting commands.
//! So connections may take at most half of the descriptor limit (the soft limit, raised to the
//! hard one first); past that, new connections wait in the kernel's accept queue until one
//! closes, and the other half stays for the server's own work.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The soft descriptor limit the server started with (0 until [`connection_budget`] runs).
static STARTED_WITH: AtomicU64 = AtomicU64::new(0);

/// Raises the soft descriptor limit to the hard one; returns how many connections may be open.
pub fn connection_budget() -> usize {
    // SAFETY: getrlimit/setrlimit on a struct we own.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return 512;
    }
    STARTED_WITH.store(lim.rlim_cur as u64, Ordering::Relaxed);
    if lim.rlim_cur < lim.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: lim.rlim_max,
            rlim_max: lim.rlim_max,
        };
        // SAFETY: as above.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            lim.rlim_cur = lim.rlim_max;
        }
    }
    let half = (lim.rlim_cur / 2).min(1 << 20) as usize;
    half.max(16)
}

/// Between fork and exec of a child (bwrap, slirp4netns, nft): gives back the soft descriptor
/// limit the server started with. The raised one is the server's alone; inherited, it would make
/// a sandbox's `ulimit -n` depend on the host's hard limit (a million, on some), and programs
/// that walk every possible descriptor slow. Async-signal-safe: two system calls on the stack.
pub fn restore_in_child() {
    let started = STARTED_WITH.load(Ordering::Relaxed);
    if started == 0 {
        return;
    }
    // SAFETY: getrlimit/setrlimit on a struct on the stack.
    unsafe {
        let mut lim: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0 && lim.rlim_cur > started as libc::rlim_t {
            lim.rlim_cur = started as libc::rlim_t;
            libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
        }
    }
}

/// A listener that holds at most a fixed number of connections open.
pub struct Capped {
    inner: TcpListener,
    slots: Arc<Semaphore>,
}

impl Capped {
    /// Wraps `inner`, allowing `max` connections at once.
    pub fn new(inner: TcpListener, max: usize) -> Capped {
        Capped {
            inner,
            slots: Arc::new(Semaphore::new(max)),
        }
    }
}

/// A connection of a [`Capped`] listener; its slot is given back when it is dropped.
pub struct CappedStream {
    io: TcpStream,
    _slot: Option<OwnedSemaphorePermit>,
}

impl axum::serve::Listener for Capped {
    type Io = CappedStream;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        // The semaphore is never closed, so this waits for a slot; None only if it were.
        let slot = self.slots.clone().acquire_owned().await.ok();
        let (io, addr) = axum::serve::Listener::accept(&mut self.inner).await;
        (CappedStream { io, _slot: slot }, addr)
    }

    fn local_addr(&self) -> io::Result<SocketAddr> {
        self.inner.local_addr()
    }
}

impl AsyncRead for CappedStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for CappedStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
