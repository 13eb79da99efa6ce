//! Network under a policy: a sandbox reaches the internet through slirp4netns in a network
//! namespace of its own, never the host (its loopback, the local API, its own addresses), and
//! `network` (`allow_internet_access`, `allow_out`, `deny_out`) is enforced, reported, kept by
//! snapshots and changed by PATCH. Needs root (as CI runs), slirp4netns and nft, and the package
//! registry (pypi.org) that this machine reaches; each network wait is bounded.

mod common;

use std::net::{Ipv4Addr, TcpListener, ToSocketAddrs};
use std::time::Duration;

use common::{require_root, eventually, temp_dir, Server};
use serde_json::{json, Value};

const P: &str = "/v1/namespaces/default";

fn info(s: &Server, id: &str) -> Value {
    let r = s.get(&format!("{P}/sandboxes/{id}"));
    assert_eq!(r.status, 200, "{}", r.text());
    r.json()
}

fn patch(s: &Server, id: &str, body: &Value) -> common::Resp {
    let b = body.to_string();
    s.req(
        "PATCH",
        &format!("{P}/sandboxes/{id}"),
        &[("Content-Type", "application/json")],
        Some(b.as_bytes()),
    )
}

/// Runs Python in the sandbox; stdout lines.
fn py(s: &Server, sb: &str, code: &str) -> Vec<String> {
    let run = s.run_body(
        sb,
        &json!({ "command": "python3", "args": ["-c", code], "timeout": 60 }),
    );
    assert!(run.exit["exit_code"].is_i64(), "{run:?}");
    run.stdout
}

/// "200" when the sandbox fetched PyPI's index page for `six` over HTTPS (the certificate
/// checked against the host's store), else the error's name.
fn fetch_pypi(s: &Server, sb: &str) -> String {
    let out = py(
        s,
        sb,
        "import urllib.request\n\
         try:\n  print(urllib.request.urlopen('https://pypi.org/simple/six/', timeout=20).status)\n\
         except Exception as e:\n  print(type(e).__name__, e)",
    );
    out.join(" ")
}

/// What connecting from the sandbox to each `addr:port` gives: "open" or the error.
fn connect_all(s: &Server, sb: &str, targets: &[(String, u16)]) -> Vec<String> {
    let list: Vec<String> = targets
        .iter()
        .map(|(a, p)| format!("('{a}', {p})"))
        .collect();
    let code = format!(
        "import socket\n\
         for a, p in [{}]:\n\
         \x20 s = socket.socket(); s.settimeout(3)\n\
         \x20 try:\n\
         \x20   s.connect((a, p)); print(a, p, 'open')\n\
         \x20 except Exception as e:\n\
         \x20   print(a, p, 'refused', e)",
        list.join(", ")
    );
    py(s, sb, &code)
}

/// Network interfaces the sandbox sees.
fn interfaces(s: &Server, sb: &str) -> Vec<String> {
    let run = s.sh(sb, "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' '");
    run.stdout
}

fn pypi_ip() -> String {
    ("pypi.org", 443)
        .to_socket_addrs()
        .expect("pypi.org resolves on the host")
        .find(|a| a.is_ipv4())
        .expect("an IPv4 address for pypi.org")
        .ip()
        .to_string()
}

/// The host's non-loopback IPv4 addresses.
fn host_addresses() -> Vec<Ipv4Addr> {
    let mut out = Vec::new();
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list walked read-only and freed once.
    unsafe {
        assert_eq!(libc::getifaddrs(&mut ifap), 0);
        let mut p = ifap;
        while !p.is_null() {
            let a = (*p).ifa_addr;
            if !a.is_null() && (*a).sa_family as i32 == libc::AF_INET {
                let sin = &*(a as *const libc::sockaddr_in);
                let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
                if !ip.is_loopback() {
                    out.push(ip);
                }
            }
            p = (*p).ifa_next;
        }
        libc::freeifaddrs(ifap);
    }
    out
}

/// Pids of the slirp4netns processes `server` started.
fn slirps_of(server: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(e.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid ...
        let Some((head, tail)) = stat.rsplit_once(") ") else {
            continue;
        };
        let fields: Vec<&str> = tail.split(' ').collect();
        if head.ends_with("(slirp4netns")
            && fields.get(1) == Some(&server.to_string().as_str())
            && fields[0] != "Z"
        {
            out.push(pid);
        }
    }
    out
}

fn alive(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .map(|s| {
            s.rsplit_once(") ")
                .map(|(_, t)| !t.starts_with('Z'))
                .unwrap_or(false)
        })
        .unwrap_or(false)
}

#[test]
fn a_sandbox_reaches_pypi_over_https_and_trusts_the_hosts_store() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    assert_eq!(fetch_pypi(&s, &sb), "200");
    // pip itself, as the documented workflow uses it (its index and files through the host's CA).
    let run = s.run_body(
        &sb,
        &json!({"command": "python3", "args": ["-m", "pip", "download", "--no-deps", "six", "-d", "/tmp/wheels"], "timeout": 120}),
    );
    assert!(
        run.stdout
            .iter()
            .any(|l| l.contains("Successfully downloaded six")),
        "{run:?}"
    );
    let run = s.sh(&sb, "cat /etc/resolv.conf; test -d /etc/ssl/certs && echo certs; echo x > /etc/ssl/certs/x || echo read-only");
    assert!(
        run.stdout.contains(&"nameserver 10.0.2.3".to_string()),
        "{run:?}"
    );
    assert!(
        run.stdout.contains(&"certs".to_string()) && run.stdout.contains(&"read-only".to_string()),
        "{run:?}"
    );
    let i = info(&s, &sb);
    let default = json!({"allow_internet_access": true, "allow_out": [], "deny_out": []});
    assert_eq!(i["network"], default, "{i}");
    assert_eq!(i["network_policy"], default, "{i}");
    let err = s.stderr();
    assert!(err.contains("isolation: network: on"), "{err}");
}

#[test]
fn the_host_its_loopback_and_the_local_api_are_unreachable() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let lport = listener.local_addr().unwrap().port();
    let mut targets = vec![
        ("10.0.2.2".to_string(), s.port),
        ("10.0.2.2".to_string(), lport),
        ("127.0.0.1".to_string(), s.port),
        ("127.0.0.1".to_string(), lport),
    ];
    let hosts = host_addresses();
    assert!(
        !hosts.is_empty(),
        "the host has a non-loopback address to test"
    );
    for h in &hosts {
        targets.push((h.to_string(), lport));
        targets.push((h.to_string(), s.port));
    }
    let out = connect_all(&s, &sb, &targets);
    assert_eq!(out.len(), targets.len(), "{out:?}");
    assert!(out.iter().all(|l| l.contains("refused")), "{out:?}");
    assert!(
        listener.accept().is_err(),
        "the host's listener got a connection"
    );
    // Reachable from the host itself, so the refusals above are the sandbox's walls.
    assert!(std::net::TcpStream::connect(("127.0.0.1", lport)).is_ok());
    // The sandbox cannot take the walls down: no capability over its namespace.
    let run = s.sh(&sb, "nft flush ruleset; echo nft=$?; ip link set tap0 down; echo ip=$?; ip route add 192.0.2.0/24 dev lo; echo route=$?");
    for want in ["nft=", "ip=", "route="] {
        let line = run.stdout.iter().find(|l| l.starts_with(want)).unwrap();
        assert_ne!(line, &format!("{want}0"), "{run:?}");
    }
    let out = connect_all(&s, &sb, &targets[..2]);
    assert!(out.iter().all(|l| l.contains("refused")), "{out:?}");
    assert_eq!(
        fetch_pypi(&s, &sb),
        "200",
        "the network still works after the attempts"
    );
}

#[test]
fn no_internet_access_leaves_only_a_loopback_shared_by_the_sandboxs_commands() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox_with(json!({"network": {"allow_internet_access": false}}));
    assert_eq!(interfaces(&s, &sb), vec!["lo"]);
    assert_ne!(fetch_pypi(&s, &sb), "200");
    // A listener started by one command answers another: one machine, one loopback (and, as
    // on a machine of its own, root may serve on port 80).
    let r = s.req(
        "POST",
        "/api/v1/processes",
        &[("Content-Type", "application/json"), ("X-Tensorlake-Sandbox-Id", &sb)],
        Some(
            json!({"command": "python3", "args": ["-c",
                "import socket,time\ns=socket.socket(); s.bind(('127.0.0.1', 80)); s.listen()\nc,_=s.accept(); c.send(b'hello'); time.sleep(1)"]})
            .to_string()
            .as_bytes(),
        ),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let mut got = Vec::new();
    eventually(10, "the loopback listener answers", || {
        got = py(
            &s,
            &sb,
            "import socket\ntry:\n  s=socket.create_connection(('127.0.0.1', 80), 2); print(s.recv(5).decode())\nexcept Exception as e: print(e)",
        );
        got == vec!["hello"]
    });
    let i = info(&s, &sb);
    assert_eq!(i["network_policy"]["allow_internet_access"], false, "{i}");
}

#[test]
fn allow_out_and_deny_out_are_enforced_and_deny_wins() {
    require_root();
    let s = Server::start(&[]);
    let ip = pypi_ip();
    let denied = s.sandbox_with(json!({"network": {"deny_out": [format!("{ip}/32")]}}));
    assert_ne!(fetch_pypi(&s, &denied), "200");
    let listed = s.sandbox_with(json!({"network": {"allow_out": [ip]}}));
    assert_eq!(fetch_pypi(&s, &listed), "200");
    // Only listed destinations: another address is refused, though DNS still answers.
    let other = s.sandbox_with(json!({"network": {"allow_out": ["192.0.2.77"]}}));
    assert_ne!(fetch_pypi(&s, &other), "200");
    let out = py(
        &s,
        &other,
        "import socket\nprint(socket.gethostbyname('pypi.org'))",
    );
    assert_eq!(out, vec![ip.clone()]);
    let both = s.sandbox_with(
        json!({"network": {"allow_out": [ip], "deny_out": ["0.0.0.0/0"]}}),
    );
    assert_ne!(fetch_pypi(&s, &both), "200");
    // allow_internet_access false with allow_out: no DNS, the listed address still reachable.
    let nodns = s.sandbox_with(
        json!({"network": {"allow_internet_access": false, "allow_out": [ip]}}),
    );
    let out = py(
        &s,
        &nodns,
        &format!("import socket\ntry: socket.gethostbyname('pypi.org'); print('dns')\nexcept Exception: print('no dns')\ns=socket.create_connection(('{ip}', 443), 10); print('open')"),
    );
    assert_eq!(out, vec!["no dns", "open"]);
}

#[test]
fn policies_that_cannot_be_enforced_are_refused_naming_the_value() {
    require_root();
    let s = Server::start(&[]);
    for (network, status, needle) in [
        (json!({"allow_out": ["10.0.0.0/33"]}), 400, "10.0.0.0/33"),
        (json!({"deny_out": ["1.2.3"]}), 400, "1.2.3"),
        (
            json!({"allow_out": ["api.example.com"]}),
            400,
            "api.example.com",
        ),
        (json!({"allow_out": ["2001:db8::/32"]}), 400, "IPv6"),
        (json!({"allow_out": "10.0.0.0/8"}), 422, "network.allow_out"),
        (
            json!({"allow_internet_access": "yes"}),
            422,
            "allow_internet_access",
        ),
    ] {
        let r = s.post_json(&format!("{P}/sandboxes"), &json!({ "network": network }));
        assert_eq!(r.status, status, "{network}: {}", r.text());
        assert!(r.text().contains(needle), "{network}: {}", r.text());
    }
    let sb = s.sandbox();
    let r = patch(&s, &sb, &json!({"network": {"deny_out": ["300.1.1.1"]}}));
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(r.text().contains("300.1.1.1"), "{}", r.text());
    assert_eq!(info(&s, &sb)["network"]["deny_out"], json!([]));
    let r = s.post_json(
        &format!("{P}/sandbox-pools"),
        &json!({"network": {"allow_out": ["x.y"]}}),
    );
    assert_eq!(r.status, 400, "{}", r.text());
}

#[test]
fn a_policy_survives_snapshot_restore_and_restart_and_patch_changes_or_clears_it() {
    require_root();
    let s = Server::start(&[]);
    let closed = json!({"allow_internet_access": false, "allow_out": [], "deny_out": []});
    let sb = s.sandbox_with(json!({"network": {"allow_internet_access": false}}));
    assert_eq!(info(&s, &sb)["network"], closed);
    let snap = s.snapshot(&sb);
    s.wait_snapshot(&snap, &["local_ready", "completed"]);
    let restored = s.sandbox_with(json!({"snapshot_id": snap}));
    assert_eq!(info(&s, &restored)["network_policy"], closed);
    assert_eq!(interfaces(&s, &restored), vec!["lo"]);
    let opened = s.sandbox_with(
        json!({"snapshot_id": snap, "network": {"allow_internet_access": true}}),
    );
    assert_eq!(info(&s, &opened)["network"]["allow_internet_access"], true);
    assert_eq!(fetch_pypi(&s, &opened), "200");

    // PATCH: null clears (internet again), an object replaces.
    let r = patch(&s, &sb, &json!({"network": null}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["network"]["allow_internet_access"], true);
    assert_eq!(fetch_pypi(&s, &sb), "200");
    let r = patch(&s, &sb, &json!({"network": {"deny_out": [pypi_ip()]}}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_ne!(fetch_pypi(&s, &sb), "200");
    let r = patch(&s, &sb, &json!({"name": "kept"}));
    assert_eq!(r.status, 200);
    assert_eq!(
        r.json()["network"]["deny_out"],
        json!([pypi_ip()]),
        "a PATCH without network keeps it"
    );

    // After a restart, the stored policies are enforced again.
    let data = s.stop();
    let s = Server::start_in(data, &[], &[]);
    assert_eq!(interfaces(&s, &restored), vec!["lo"]);
    assert_ne!(fetch_pypi(&s, &sb), "200");
    assert_eq!(fetch_pypi(&s, &opened), "200");
}

#[test]
fn suspend_stops_the_way_out_and_a_killed_server_leaves_none() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let closed = s.sandbox_with(json!({"network": {"allow_internet_access": false}}));
    assert!(
        slirps_of(s.pid()).is_empty(),
        "nothing runs for a sandbox before its first command"
    );
    assert_eq!(fetch_pypi(&s, &sb), "200");
    assert_eq!(s.sh(&closed, "echo ran").stdout, vec!["ran"]);
    let slirps = slirps_of(s.pid());
    assert_eq!(
        slirps.len(),
        1,
        "one slirp4netns, for the sandbox with internet"
    );
    // slirp4netns: no capability but CAP_NET_BIND_SERVICE, and a root with none of the host's
    // secrets or sockets (a compromised libslirp finds nothing there).
    let status = std::fs::read_to_string(format!("/proc/{}/status", slirps[0])).unwrap();
    assert!(status.contains("CapEff:\t0000000000000400"), "{status}");
    // Its own seccomp filter and the server's (no signals to other processes).
    assert!(status.contains("Seccomp_filters:\t2"), "{status}");
    // It counts against the sandbox's limits, but is never frozen with it.
    let cgroups = std::fs::read_to_string(format!("/proc/{}/cgroup", slirps[0])).unwrap();
    for line in cgroups.lines() {
        let (_, path) = line.rsplit_once(':').unwrap();
        let fields: Vec<&str> = line.split(':').collect();
        if fields[1].split(',').any(|c| c == "memory" || c == "pids") {
            assert!(path.ends_with(&sb), "{cgroups}");
        }
        if fields[1] == "freezer" {
            assert!(!path.ends_with(&sb), "{cgroups}");
        }
    }
    let root = format!("/proc/{}/root", slirps[0]);
    let etc: Vec<String> = std::fs::read_dir(format!("{root}/etc"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(etc, vec!["resolv.conf"]);
    let run: Vec<String> = std::fs::read_dir(format!("{root}/run"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        run.iter().all(|n| n == "mount"),
        "only what slirp4netns makes itself: {run:?}"
    );
    let r = s.post_empty(&format!("{P}/sandboxes/{sb}/suspend"));
    assert_eq!(r.status, 202, "{}", r.text());
    eventually(5, "slirp4netns stops at suspend", || {
        slirps_of(s.pid()).is_empty()
    });
    let r = s.post_empty(&format!("{P}/sandboxes/{sb}/resume"));
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(fetch_pypi(&s, &sb), "200");
    let r = s.delete(&format!("{P}/sandboxes/{sb}"));
    assert_eq!(r.status, 200);
    eventually(5, "slirp4netns stops at delete", || {
        slirps_of(s.pid()).is_empty()
    });

    let sb = s.sandbox();
    assert_eq!(fetch_pypi(&s, &sb), "200");
    let pids = slirps_of(s.pid());
    assert_eq!(pids.len(), 1);
    let _data = s.kill9();
    eventually(5, "slirp4netns exits with a SIGKILLed server", || {
        !pids.iter().any(|p| alive(*p))
    });
}

#[test]
fn without_slirp4netns_the_server_says_so_and_refuses_internet() {
    require_root();
    let s = Server::start_in(
        temp_dir("noslirp"),
        &[],
        &[("TENSORLAKE_LOCAL_SLIRP4NETNS", "/nonexistent/slirp4netns")],
    );
    std::thread::sleep(Duration::from_millis(100));
    let err = s.stderr();
    assert!(
        err.contains("network: NOT available: slirp4netns is missing"),
        "{err}"
    );
    assert!(err.contains("loopback only"), "{err}");
    for network in [
        json!({"allow_internet_access": true}),
        json!({"allow_internet_access": false, "allow_out": ["1.1.1.1"]}),
    ] {
        let r = s.post_json(&format!("{P}/sandboxes"), &json!({ "network": network }));
        assert_eq!(r.status, 400, "{}", r.text());
        assert!(r.text().contains("slirp4netns is missing"), "{}", r.text());
    }
    let sb = s.sandbox();
    assert_eq!(
        info(&s, &sb)["network"]["allow_internet_access"],
        false,
        "the default here says what it is"
    );
    assert_eq!(interfaces(&s, &sb), vec!["lo"]);
    let r = patch(&s, &sb, &json!({"network": {"allow_out": ["1.1.1.1"]}}));
    assert_eq!(r.status, 400, "{}", r.text());
    let offline = s.sandbox_with(json!({"network": {"allow_internet_access": false}}));
    assert_eq!(s.sh(&offline, "echo ran").stdout, vec!["ran"]);
}

#[test]
fn an_unprivileged_server_says_sandboxes_have_no_network() {
    require_root();
    let data = temp_dir("nobody-net");
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).unwrap();
    let s = common::start_as_user(65534, data, &[]);
    let sb = s.sandbox();
    assert_eq!(s.sh(&sb, "echo ran").stdout, vec!["ran"]);
    std::thread::sleep(Duration::from_millis(100));
    let err = s.stderr();
    assert!(
        err.contains("network: NOT available") && err.contains("root"),
        "{err}"
    );
}

#[test]
fn a_pool_keeps_its_policy_when_an_update_omits_it_and_null_clears_it() {
    require_root();
    let s = Server::start(&[]);
    let r = s.post_json(
        &format!("{P}/sandbox-pools"),
        &json!({"network": {"allow_internet_access": false}, "warm_containers": 0}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let pool = r.json()["pool_id"].as_str().unwrap().to_string();
    let path = format!("{P}/sandbox-pools/{pool}");
    let r = s.put_json(&path, &json!({"timeout_secs": 600}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        s.get(&path).json()["network_policy"]["allow_internet_access"],
        false
    );
    let claimed = s.post_empty(&format!("{path}/sandboxes"));
    assert_eq!(claimed.status, 200, "{}", claimed.text());
    let sb = claimed.json()["sandbox_id"].as_str().unwrap().to_string();
    assert_eq!(
        interfaces(&s, &sb),
        vec!["lo"],
        "a claimed sandbox has its pool's policy"
    );
    let r = s.put_json(&path, &json!({"network": null}));
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(s.get(&path).json()["network_policy"], Value::Null);
}

/// The walls for what TCP tests leave out: UDP to the host (10.0.2.2, its own addresses, a
/// listener on its 0.0.0.0), ports of slirp4netns's DNS address other than 53 (slirp4netns
/// forwards them to the host's resolver, which may be a service on the host's loopback), the
/// rest of 10.0.2.0/24, and IPv6 (to the outside and to the host). DNS itself still works.
#[test]
fn udp_the_dns_address_other_ports_and_ipv6_lead_nowhere() {
    require_root();
    let s = Server::start(&[]);
    let sb = s.sandbox();
    let udp = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
    udp.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    let uport = udp.local_addr().unwrap().port();
    let listener = TcpListener::bind("0.0.0.0:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let lport = listener.local_addr().unwrap().port();
    let mut udp_targets = vec![format!("('10.0.2.2', {uport})"), format!("('10.0.2.3', {uport})")];
    for h in host_addresses() {
        udp_targets.push(format!("('{h}', {uport})"));
    }
    let code = format!(
        "import socket\n\
         u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         for t in [{udp}]:\n\
         \x20 for _ in range(3):\n\
         \x20   try: u.sendto(b'sandbox', t)\n\
         \x20   except OSError: pass\n\
         def tcp(fam, a, p):\n\
         \x20 s = socket.socket(fam); s.settimeout(3)\n\
         \x20 try:\n\
         \x20   s.connect((a, p)); return 'open'\n\
         \x20 except Exception as e:\n\
         \x20   return 'closed'\n\
         for a, p in [('10.0.2.3', 80), ('10.0.2.3', 22), ('10.0.2.3', {lport}), ('10.0.2.4', {lport}), ('10.0.2.255', {lport})]:\n\
         \x20 print(a, p, tcp(socket.AF_INET, a, p))\n\
         for a in ['2606:4700:4700::1111', '::ffff:10.0.2.2', '::ffff:127.0.0.1']:\n\
         \x20 print(a, tcp(socket.AF_INET6, a, 443 if ':4700' in a else {lport}))\n\
         print('dns', len(socket.getaddrinfo('pypi.org', 443, socket.AF_INET)) > 0)",
        udp = udp_targets.join(", ")
    );
    let out = py(&s, &sb, &code);
    let mut buf = [0u8; 64];
    assert!(udp.recv_from(&mut buf).is_err(), "a datagram of the sandbox reached the host");
    assert!(listener.accept().is_err(), "a connection of the sandbox reached the host");
    assert_eq!(out.last().map(String::as_str), Some("dns True"), "{out:?}");
    for l in &out[..out.len() - 1] {
        assert!(l.ends_with(" closed"), "{out:?}");
    }
    assert_eq!(out.len(), 9, "{out:?}");
}
