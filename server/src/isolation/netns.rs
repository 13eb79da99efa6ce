//! One network namespace per sandbox, made by the (root) server, that every command of the
//! sandbox joins before bwrap runs: the sandbox's loopback is shared by its commands, as on one
//! machine, and its path out is slirp4netns (user-mode networking: a TCP/IP stack in a host
//! process, so the namespace has no veth and the host no routes or NAT rules for it).
//!
//! - The namespace is held by a descriptor only, never by a name on the host: when the server
//!   dies (SIGKILL included) nothing of it persists. slirp4netns gets `--exit-fd`, the read end
//!   of a pipe whose write end only the server holds, so it exits with the server too.
//! - The namespace belongs to the host's user namespace; sandbox code runs in a user namespace
//!   of its own with no capabilities, so it cannot change addresses, routes or the firewall.
//! - nftables rules inside the namespace (see `netpolicy`) enforce the policy and keep the
//!   host's own addresses and slirp4netns's gateway unreachable; slirp4netns runs with
//!   `--disable-host-loopback`, in its own sandbox (`--enable-sandbox`: an empty root, no
//!   capabilities) and seccomp filter.
//! - A suspended sandbox's slirp4netns is stopped, and started again at resume.

use std::collections::HashMap;
use std::ffi::CString;
use std::ffi::OsString;
use std::io::{self, Write};
use std::net::Ipv4Addr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use super::slirp::{start_slirp, stop, Slirp};
use crate::netpolicy::NetPolicy;

/// Environment variable naming the slirp4netns binary (default: `slirp4netns` on `PATH`); a path
/// that does not exist turns networking off, which the tests use.
pub const SLIRP_ENV: &str = "TENSORLAKE_LOCAL_SLIRP4NETNS";

/// The `/etc/resolv.conf` commands of a sandbox with a namespace see, read-only: slirp4netns's
/// DNS forwarder, which asks the host's resolvers.
pub const RESOLV_CONF: &str = "nameserver 10.0.2.3\noptions edns0\n";

/// The tools networking needs, once found to work.
struct Tools {
    slirp: PathBuf,
    nft: PathBuf,
    /// The seccomp program slirp4netns runs under (see `seccomp::slirp_program`).
    filter: Vec<seccompiler::sock_filter>,
}

/// The network of one sandbox. The namespace and slirp4netns are made at its first command,
/// not at its creation: a thousand sandboxes that only take snapshots cost no process each.
struct SandboxNet {
    ns: Option<Arc<OwnedFd>>,
    policy: NetPolicy,
    /// Not suspended: its way out may run.
    running: bool,
    /// The `cgroup.procs` files slirp4netns joins (the sandbox's limits).
    cgroups: Vec<CString>,
    slirp: Option<Slirp>,
}

/// Networking of this server's sandboxes.
pub struct Network {
    tools: Result<Tools, String>,
    /// The `/etc` slirp4netns sees (see [`start_slirp`]).
    etc: PathBuf,
    /// One lock per sandbox, so one sandbox's slirp4netns starting does not hold up another's.
    sandboxes: Mutex<HashMap<String, Arc<Mutex<SandboxNet>>>>,
    /// The host addresses the sandboxes' rules block.
    host: Mutex<Vec<Ipv4Addr>>,
}

fn find_on_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_else(|| {
        OsString::from("/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    });
    let mut dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    // nft lives in /usr/sbin, which a normal user's PATH may lack.
    dirs.extend(["/usr/sbin", "/sbin"].map(PathBuf::from));
    dirs.into_iter().map(|d| d.join(name)).find(|p| p.is_file())
}

/// The IPv4 addresses of the host's interfaces (those a sandbox must not reach).
pub fn host_addresses() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we walk read-only and free once.
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return out;
        }
        let mut p = ifap;
        while !p.is_null() {
            let a = (*p).ifa_addr;
            if !a.is_null() && (*a).sa_family as i32 == libc::AF_INET {
                let sin = &*(a as *const libc::sockaddr_in);
                out.push(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(ifap);
    }
    out.sort();
    out.dedup();
    out
}

/// A new network namespace with its loopback up and every port bindable, held by the returned descriptor. Made on a
/// thread of its own, which ends right after: only that thread ever enters it.
pub fn new_namespace() -> io::Result<OwnedFd> {
    std::thread::spawn(|| -> io::Result<OwnedFd> {
        // SAFETY: unshare of the network namespace affects only this thread; the socket and
        // ioctl operate on a local ifreq.
        let ns = unsafe {
            if libc::unshare(libc::CLONE_NEWNET) != 0 {
                return Err(io::Error::last_os_error());
            }
            let ns = libc::open(
                c"/proc/thread-self/ns/net".as_ptr(),
                libc::O_RDONLY | libc::O_CLOEXEC,
            );
            if ns < 0 {
                return Err(io::Error::last_os_error());
            }
            let ns = OwnedFd::from_raw_fd(ns);
            let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
            if sock < 0 {
                return Err(io::Error::last_os_error());
            }
            let sock = OwnedFd::from_raw_fd(sock);
            let mut req: libc::ifreq = std::mem::zeroed();
            for (i, b) in b"lo\0".iter().enumerate() {
                req.ifr_name[i] = *b as libc::c_char;
            }
            if libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) != 0 {
                return Err(io::Error::last_os_error());
            }
            req.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            if libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS, &req) != 0 {
                return Err(io::Error::last_os_error());
            }
            ns
        };
        // The namespace belongs to the host's user namespace, where the sandbox has no
        // CAP_NET_BIND_SERVICE: without this, its root could not serve on port 80 as it can on a
        // machine of its own. (The sysctl is the namespace's own; this thread is inside it.)
        std::fs::write("/proc/sys/net/ipv4/ip_unprivileged_port_start", "0")?;
        Ok(ns)
    })
    .join()
    .map_err(|_| io::Error::other("the network namespace thread panicked"))?
}

/// Runs `cmd` with `ns` as its network namespace.
fn in_namespace(cmd: &mut Command, ns: RawFd) {
    // SAFETY: setns is async-signal-safe; `ns` stays open in the parent until after the spawn.
    unsafe {
        cmd.pre_exec(move || {
            crate::conn_limit::restore_in_child();
            if libc::setns(ns, libc::CLONE_NEWNET) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn load_rules(nft: &Path, ns: RawFd, rules: &str) -> io::Result<()> {
    let mut cmd = Command::new(nft);
    cmd.args(["-f", "-"])
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    in_namespace(&mut cmd, ns);
    let mut child = cmd.spawn()?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(rules.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        return Err(io::Error::other(format!(
            "nft refused the sandbox's rules ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

impl SandboxNet {
    /// Loads the policy's rules, then starts or stops slirp4netns to match (rules first, so no
    /// packet leaves under the old policy's reach). Nothing before the namespace exists.
    fn sync(&mut self, tools: &Tools, host: &[Ipv4Addr], etc: &Path) -> io::Result<()> {
        let Some(ns) = &self.ns else {
            return Ok(());
        };
        load_rules(&tools.nft, ns.as_raw_fd(), &self.policy.ruleset(host))?;
        self.way_out(tools, etc)
    }

    /// Starts slirp4netns if the sandbox runs, its policy wants a way out, and none is alive
    /// (one that died is replaced); stops it otherwise.
    fn way_out(&mut self, tools: &Tools, etc: &Path) -> io::Result<()> {
        let Some(ns) = self.ns.clone() else {
            return Ok(());
        };
        let alive = self
            .slirp
            .as_mut()
            .is_some_and(|s| matches!(s.child.try_wait(), Ok(None)));
        if self.running && self.policy.wants_outside() {
            if !alive {
                if let Some(s) = self.slirp.take() {
                    stop(s);
                }
                self.slirp = Some(start_slirp(
                    &tools.slirp,
                    ns.as_raw_fd(),
                    etc,
                    &self.cgroups,
                    &tools.filter,
                )?);
            }
        } else {
            if let Some(s) = self.slirp.take() {
                stop(s);
            }
        }
        Ok(())
    }
}

impl Network {
    /// Finds slirp4netns and nft and checks that a namespace with rules can be made here.
    /// `as_root`: only a root server makes namespaces for sandboxes.
    /// `etc`: a directory of the (private) data directory for slirp4netns's `/etc`.
    pub fn detect(as_root: bool, etc: PathBuf) -> Network {
        Network {
            tools: Self::check(as_root),
            etc,
            sandboxes: Mutex::new(HashMap::new()),
            host: Mutex::new(host_addresses()),
        }
    }

    fn check(as_root: bool) -> Result<Tools, String> {
        if !as_root {
            return Err(
                "a network namespace per sandbox, and its firewall, need a server run as root"
                    .into(),
            );
        }
        let slirp = match std::env::var_os(SLIRP_ENV).filter(|v| !v.is_empty()) {
            Some(p) if Path::new(&p).is_file() => PathBuf::from(p),
            Some(p) => {
                return Err(format!(
                    "slirp4netns is missing: {SLIRP_ENV} points to {}, which does not exist (Debian/Ubuntu: apt-get install slirp4netns)",
                    Path::new(&p).display()
                ))
            }
            None => find_on_path("slirp4netns").ok_or(
                "slirp4netns is missing (Debian/Ubuntu: apt-get install slirp4netns, or run scripts/setup.sh)",
            )?,
        };
        let nft = find_on_path("nft").ok_or(
            "nft is missing, so policies and the block on the host's addresses cannot be enforced (Debian/Ubuntu: apt-get install nftables)",
        )?;
        if !Path::new("/dev/net/tun").exists() {
            return Err("/dev/net/tun is missing (slirp4netns needs a TAP device)".into());
        }
        let ns = new_namespace().map_err(|e| format!("cannot create a network namespace: {e}"))?;
        load_rules(&nft, ns.as_raw_fd(), &NetPolicy::default().ruleset(&[]))
            .map_err(|e| format!("nftables does not work here: {e}"))?;
        let filter = super::seccomp::slirp_program()?;
        Ok(Tools { slirp, nft, filter })
    }

    /// Whether sandboxes get namespaces (and so can have network access).
    pub fn available(&self) -> bool {
        self.tools.is_ok()
    }

    /// Why sandboxes cannot have network access here.
    pub fn missing(&self) -> Option<&str> {
        self.tools.as_ref().err().map(String::as_str)
    }

    /// The start-up summary line.
    pub fn summary(&self) -> String {
        match &self.tools {
            Ok(t) => format!(
                "network: on (a network namespace per sandbox; internet through {} with the host's loopback and addresses blocked; allow_out/deny_out enforced with {})",
                t.slirp.display(),
                t.nft.display()
            ),
            Err(why) => format!(
                "network: NOT available: {why}. Sandboxes still run, with loopback only; a create or update that asks for internet access or allow_out is refused with 400"
            ),
        }
    }

    /// Records sandbox `id` with `policy`; `running`: not suspended. Nothing is made yet.
    /// `cgroups`: the `cgroup.procs` files its slirp4netns joins.
    pub fn register(&self, id: &str, policy: &NetPolicy, running: bool, cgroups: Vec<CString>) {
        if self.tools.is_err() {
            return;
        }
        let net = SandboxNet {
            ns: None,
            policy: policy.clone(),
            running,
            cgroups,
            slirp: None,
        };
        let old = self
            .sandboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id.to_string(), Arc::new(Mutex::new(net)));
        if let Some(old) = old {
            Self::release_one(&old);
        }
    }

    fn get(&self, id: &str) -> Option<Arc<Mutex<SandboxNet>>> {
        self.sandboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(id)
            .cloned()
    }

    fn host(&self) -> Vec<Ipv4Addr> {
        self.host.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The namespace a command of sandbox `id` joins, made (with its rules and, if the policy
    /// wants one, its running slirp4netns) on first use; a slirp4netns that died is restarted.
    /// `None` on a server without networking. Blocking.
    pub fn enter(&self, id: &str) -> io::Result<Option<Arc<OwnedFd>>> {
        let Ok(tools) = &self.tools else {
            return Ok(None);
        };
        let Some(net) = self.get(id) else {
            return Err(io::Error::other(format!(
                "sandbox {id} has no network set up"
            )));
        };
        let mut net = net.lock().unwrap_or_else(|p| p.into_inner());
        if net.ns.is_none() {
            let ns = Arc::new(new_namespace()?);
            load_rules(
                &tools.nft,
                ns.as_raw_fd(),
                &net.policy.ruleset(&self.host()),
            )?;
            net.ns = Some(ns);
        }
        net.way_out(tools, &self.etc)?;
        Ok(net.ns.clone())
    }

    /// Gives sandbox `id` a new policy (PATCH), effective for new connections at once.
    pub fn update(&self, id: &str, policy: &NetPolicy, running: bool) -> io::Result<()> {
        self.with(id, |net| {
            net.policy = policy.clone();
            net.running = running;
        })
    }

    /// Stops (suspend) or restarts (resume) sandbox `id`'s way out.
    pub fn set_running(&self, id: &str, running: bool) -> io::Result<()> {
        self.with(id, |net| net.running = running)
    }

    fn with(&self, id: &str, change: impl FnOnce(&mut SandboxNet)) -> io::Result<()> {
        let Ok(tools) = &self.tools else {
            return Ok(());
        };
        let Some(net) = self.get(id) else {
            return Ok(());
        };
        let mut net = net.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut net);
        net.sync(tools, &self.host(), &self.etc)
    }

    fn release_one(net: &Mutex<SandboxNet>) {
        let mut net = net.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(s) = net.slirp.take() {
            stop(s);
        }
        net.ns = None;
    }

    /// Stops sandbox `id`'s slirp4netns and lets go of its namespace (gone once its last
    /// process has exited).
    pub fn release(&self, id: &str) {
        let net = self
            .sandboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(id);
        if let Some(net) = net {
            Self::release_one(&net);
        }
    }

    /// Stops every slirp4netns (clean shutdown).
    pub fn stop_all(&self) {
        let all: Vec<_> = self
            .sandboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain()
            .map(|(_, s)| s)
            .collect();
        for net in all {
            Self::release_one(&net);
        }
    }

    /// Re-reads the host's addresses and, when they changed since the rules were written,
    /// reloads every sandbox's rules (called before each command starts). Blocking.
    pub fn refresh_host(&self) {
        let Ok(tools) = &self.tools else {
            return;
        };
        let now = host_addresses();
        {
            let mut host = self.host.lock().unwrap_or_else(|p| p.into_inner());
            if *host == now {
                return;
            }
            host.clone_from(&now);
        }
        let all: Vec<(String, Arc<Mutex<SandboxNet>>)> = self
            .sandboxes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .map(|(id, n)| (id.clone(), n.clone()))
            .collect();
        for (id, net) in all {
            let net = net.lock().unwrap_or_else(|p| p.into_inner());
            let Some(ns) = &net.ns else {
                continue;
            };
            if let Err(e) = load_rules(&tools.nft, ns.as_raw_fd(), &net.policy.ruleset(&now)) {
                eprintln!("tensorlake-local: warning: network rules of sandbox {id}: {e}");
            }
        }
    }
}
