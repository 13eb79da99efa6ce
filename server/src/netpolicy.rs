//! The `network` object of a sandbox (wire-protocol.md sections 3.1, 3.3, 3.4): checking it,
//! storing it in one normal form, and turning it into the nftables rules of the sandbox's
//! network namespace (see `isolation::netns`).
//!
//! Semantics, as the official SDK documents its `NetworkConfig`:
//! - `deny_out` wins: a destination it covers is unreachable, the sandbox's DNS resolver
//!   included, whatever `allow_out` says.
//! - With `allow_out` empty, `allow_internet_access` (default true) is a switch: everything but
//!   `deny_out`, or nothing at all (DNS included).
//! - With `allow_out` given, only its destinations are reachable; `allow_internet_access` then
//!   only decides whether DNS (the resolver) is.
//! - Connections already established stay up when the policy changes (a stateful filter).
//! - Entries are IPv4 addresses or CIDRs, with an optional `:port` that does not make the rule
//!   port-specific. Host names cannot be enforced by a packet filter and are refused with 400,
//!   as are IPv6 entries in `allow_out` (sandboxes have no IPv6 route; IPv6 `deny_out` entries
//!   are accepted: all IPv6 is refused anyway).
//!
//! Whatever the policy says, the host's own addresses and slirp4netns's gateway to the host's
//! loopback are never reachable.

use std::net::{IpAddr, Ipv4Addr};

use serde_json::{json, Map, Value};

/// Most entries `allow_out` or `deny_out` may hold: each is one element of an nftables set.
pub const MAX_ENTRIES: usize = 1024;

/// slirp4netns's gateway: the host's loopback when `--disable-host-loopback` is not given.
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 2);
/// slirp4netns's DNS forwarder.
pub const RESOLVER: Ipv4Addr = Ipv4Addr::new(10, 0, 2, 3);
/// slirp4netns's network: every address in it but the sandbox's own leads to the host.
const SLIRP_NET: &str = "10.0.2.0/24";

/// A refused policy: the status (400 for what cannot be enforced or is not an address, 422 for
/// a wrong JSON type, as for any other field) and a message naming the field and the value.
#[derive(Debug, PartialEq, Eq)]
pub struct PolicyError {
    /// 400 or 422.
    pub status: u16,
    /// Names the field and the offending value.
    pub message: String,
}

/// An address with a prefix length, its host bits cleared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    /// Network address.
    pub addr: IpAddr,
    /// Prefix length (32 or 128 for a single address).
    pub prefix: u8,
}

impl Cidr {
    /// Whether `ip` is in this network.
    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        match self.addr {
            IpAddr::V4(net) => {
                let mask = u32::MAX.checked_shl(32 - self.prefix as u32).unwrap_or(0);
                u32::from(ip) & mask == u32::from(net)
            }
            IpAddr::V6(_) => false,
        }
    }
}

impl std::fmt::Display for Cidr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A checked policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NetPolicy {
    /// Whether destinations in neither list are reachable.
    pub allow_internet_access: bool,
    /// Reachable whatever else the policy says (IPv4 only).
    pub allow_out: Vec<Cidr>,
    /// Unreachable unless in `allow_out`.
    pub deny_out: Vec<Cidr>,
    /// The entries as given (trimmed), for the stored and reported form.
    allow_text: Vec<String>,
    deny_text: Vec<String>,
}

impl Default for NetPolicy {
    fn default() -> Self {
        NetPolicy {
            allow_internet_access: true,
            allow_out: Vec::new(),
            deny_out: Vec::new(),
            allow_text: Vec::new(),
            deny_text: Vec::new(),
        }
    }
}

fn bad(status: u16, message: String) -> PolicyError {
    PolicyError { status, message }
}

/// Parses `a.b.c.d`, `a.b.c.d/n` (either with an optional `:port`, ignored), or the IPv6
/// forms.
pub fn parse_cidr(text: &str) -> Option<Cidr> {
    let text = match text.rsplit_once(':') {
        Some((head, port))
            if !head.contains(':')
                && !port.is_empty()
                && port.len() <= 5
                && port.bytes().all(|b| b.is_ascii_digit()) =>
        {
            head
        }
        _ => text,
    };
    let (addr, prefix) = match text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (text, None),
    };
    let addr: IpAddr = addr.parse().ok()?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
            p.parse::<u8>().ok().filter(|p| *p <= max)?
        }
        Some(_) => return None,
    };
    let addr = match addr {
        IpAddr::V4(a) => {
            let mask = u32::MAX.checked_shl(32 - prefix as u32).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(u32::from(a) & mask))
        }
        IpAddr::V6(a) => {
            let mask = u128::MAX.checked_shl(128 - prefix as u32).unwrap_or(0);
            IpAddr::V6(std::net::Ipv6Addr::from(u128::from(a) & mask))
        }
    };
    Some(Cidr { addr, prefix })
}

fn entries(obj: &Map<String, Value>, field: &str) -> Result<(Vec<Cidr>, Vec<String>), PolicyError> {
    let list = match obj.get(field) {
        None | Some(Value::Null) => return Ok((Vec::new(), Vec::new())),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(bad(
                422,
                format!("invalid field `network.{field}`: must be a list of IP addresses or CIDRs"),
            ))
        }
    };
    if list.len() > MAX_ENTRIES {
        return Err(bad(
            400,
            format!(
                "network.{field} has {} entries; at most {MAX_ENTRIES} are allowed",
                list.len()
            ),
        ));
    }
    let mut cidrs = Vec::with_capacity(list.len());
    let mut texts = Vec::with_capacity(list.len());
    for item in list {
        let Some(text) = item.as_str() else {
            return Err(bad(
                422,
                format!("invalid field `network.{field}`: entries must be strings, got {item}"),
            ));
        };
        let text = text.trim();
        let Some(cidr) = parse_cidr(text) else {
            let looks_like_name = !text.is_empty()
                && text.contains(|c: char| c.is_ascii_alphabetic())
                && !text.contains(':')
                && !text.contains('/');
            let what = if looks_like_name {
                "is a host name, which tensorlake-local cannot enforce: use IP addresses and CIDRs"
            } else {
                "is not an IP address or CIDR (e.g. 10.0.0.0/8 or 1.2.3.4)"
            };
            return Err(bad(400, format!("network.{field} entry {text:?} {what}")));
        };
        if field == "allow_out" && cidr.addr.is_ipv6() {
            return Err(bad(
                400,
                format!(
                    "network.allow_out entry {text:?} cannot be enforced: sandboxes of tensorlake-local have no IPv6 route"
                ),
            ));
        }
        cidrs.push(cidr);
        texts.push(text.to_string());
    }
    Ok((cidrs, texts))
}

impl NetPolicy {
    /// Checks a `network` object as sent on create, restore, PATCH or a pool.
    pub fn parse(value: &Value) -> Result<NetPolicy, PolicyError> {
        let Value::Object(obj) = value else {
            return Err(bad(
                422,
                "invalid field `network`: must be an object".into(),
            ));
        };
        let allow_internet_access = match obj.get("allow_internet_access") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(other) => {
                return Err(bad(
                    422,
                    format!("invalid field `network.allow_internet_access`: must be true or false, got {other}"),
                ))
            }
        };
        let (allow_out, allow_text) = entries(obj, "allow_out")?;
        let (deny_out, deny_text) = entries(obj, "deny_out")?;
        Ok(NetPolicy {
            allow_internet_access,
            allow_out,
            deny_out,
            allow_text,
            deny_text,
        })
    }

    /// The policy of a stored `network` value (`None`: the default, internet on). A stored value
    /// was checked when it was accepted; one that no longer parses falls back to no network
    /// rather than to more than was asked for.
    pub fn from_stored(value: Option<&Value>) -> NetPolicy {
        match value {
            None | Some(Value::Null) => NetPolicy::default(),
            Some(v) => NetPolicy::parse(v).unwrap_or_else(|_| NetPolicy {
                allow_internet_access: false,
                ..NetPolicy::default()
            }),
        }
    }

    /// Whether the sandbox needs a path out (slirp4netns) at all.
    pub fn wants_outside(&self) -> bool {
        self.allow_internet_access || !self.allow_out.is_empty()
    }

    /// The stored and reported form.
    pub fn to_json(&self) -> Value {
        json!({
            "allow_internet_access": self.allow_internet_access,
            "allow_out": self.allow_text,
            "deny_out": self.deny_text,
        })
    }

    /// The nftables script that replaces the sandbox's rules in one transaction: loopback and
    /// established connections always pass; IPv6, the host's addresses (`host`) and [`GATEWAY`]
    /// never do; then the module's semantics. Refusals are rejects, so a connection fails at
    /// once instead of hanging.
    pub fn ruleset(&self, host: &[Ipv4Addr]) -> String {
        fn set(items: &[String]) -> String {
            format!("{{ {} }}", items.join(", "))
        }
        let v4 = |list: &[Cidr]| -> Vec<String> {
            list.iter()
                .filter(|c| c.addr.is_ipv4())
                .map(|c| c.to_string())
                .collect()
        };
        let mut blocked: Vec<String> = vec![GATEWAY.to_string()];
        blocked.extend(
            host.iter()
                .filter(|a| !a.is_loopback())
                .map(|a| a.to_string()),
        );
        blocked.sort();
        blocked.dedup();
        let refuse = "reject with icmpx type admin-prohibited";
        let dns = [
            format!("    ip daddr {RESOLVER} udp dport 53 accept\n"),
            format!("    ip daddr {RESOLVER} tcp dport 53 accept\n"),
        ]
        .concat();
        let mut r = String::new();
        r.push_str("table inet tensorlake\ndelete table inet tensorlake\n");
        r.push_str("table inet tensorlake {\n  chain out {\n");
        r.push_str("    type filter hook output priority 0; policy drop;\n");
        r.push_str("    oifname \"lo\" accept\n");
        r.push_str("    ct state established,related accept\n");
        r.push_str(&format!("    meta nfproto ipv6 {refuse}\n"));
        r.push_str(&format!("    ip daddr {} {refuse}\n", set(&blocked)));
        let deny = v4(&self.deny_out);
        if !deny.is_empty() {
            r.push_str(&format!("    ip daddr {} {refuse}\n", set(&deny)));
        }
        // The resolver answers DNS only: slirp4netns sends any other port of 10.0.2.3 to the
        // host's resolver address, which may be on the host's loopback (127.0.0.53).
        let listed_resolver = self.allow_out.iter().any(|c| c.contains(RESOLVER));
        if self.allow_internet_access || listed_resolver {
            r.push_str(&dns);
        }
        r.push_str(&format!("    ip daddr {SLIRP_NET} {refuse}\n"));
        let allow = v4(&self.allow_out);
        if !allow.is_empty() {
            r.push_str(&format!("    ip daddr {} accept\n", set(&allow)));
            r.push_str(&format!("    {refuse}\n"));
        } else if self.allow_internet_access {
            r.push_str("    accept\n");
        } else {
            r.push_str(&format!("    {refuse}\n"));
        }
        r.push_str("  }\n}\n");
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(v: Value) -> Result<NetPolicy, PolicyError> {
        NetPolicy::parse(&v)
    }

    #[test]
    fn cidrs_parse_and_lose_their_host_bits() {
        assert_eq!(parse_cidr("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(parse_cidr("1.2.3.4").unwrap().to_string(), "1.2.3.4/32");
        assert_eq!(parse_cidr("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
        assert_eq!(parse_cidr("fd00::1/8").unwrap().to_string(), "fd00::/8");
        assert_eq!(parse_cidr("1.2.3.4:443").unwrap().to_string(), "1.2.3.4/32");
        assert_eq!(
            parse_cidr("10.0.0.0/8:80").unwrap().to_string(),
            "10.0.0.0/8"
        );
        for bad in [
            "10.0.0.0/33",
            "10.0.0/8",
            "10.0.0.0/",
            "10.0.0.0/+8",
            "x",
            "",
            "1.2.3.4/8/9",
            "1.2.3.4:",
            "1.2.3.4:x",
        ] {
            assert!(parse_cidr(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn bad_entries_are_refused_naming_the_value() {
        let e = parse(json!({"allow_out": ["10.0.0.0/33"]})).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message.contains("\"10.0.0.0/33\""), "{}", e.message);
        let e = parse(json!({"deny_out": ["example.com"]})).unwrap_err();
        assert!(
            e.message.contains("host name") && e.message.contains("example.com"),
            "{}",
            e.message
        );
        let e = parse(json!({"allow_out": ["::/0"]})).unwrap_err();
        assert!(e.message.contains("IPv6"), "{}", e.message);
        assert_eq!(
            parse(json!({"allow_out": "1.2.3.4"})).unwrap_err().status,
            422
        );
        assert_eq!(
            parse(json!({"allow_internet_access": "no"}))
                .unwrap_err()
                .status,
            422
        );
        assert_eq!(parse(json!({"deny_out": [1]})).unwrap_err().status, 422);
    }

    #[test]
    fn the_ruleset_blocks_the_host_and_puts_deny_before_allow() {
        let p = parse(json!({"allow_internet_access": false, "allow_out": ["1.1.1.1"], "deny_out": ["1.0.0.0/8"]}))
            .unwrap();
        let r = p.ruleset(&[Ipv4Addr::new(192, 0, 2, 2), Ipv4Addr::LOCALHOST]);
        let host = r.find("192.0.2.2").unwrap();
        let deny = r.find("1.0.0.0/8 }").unwrap();
        let allow = r.find("1.1.1.1/32 } accept").unwrap();
        assert!(host < deny && deny < allow, "{r}");
        assert!(r.contains("10.0.2.2"), "{r}");
        assert!(!r.contains("127.0.0.1"), "{r}");
        assert!(
            !r.contains("dport 53"),
            "DNS follows allow_internet_access: {r}"
        );
        assert!(
            r.ends_with("    reject with icmpx type admin-prohibited\n  }\n}\n"),
            "{r}"
        );
        let open = NetPolicy::default().ruleset(&[]);
        assert!(open.ends_with("    accept\n  }\n}\n"), "{open}");
        let listed = parse(json!({"allow_out": ["1.2.3.4:443"]}))
            .unwrap()
            .ruleset(&[]);
        assert!(
            listed.contains("dport 53 accept") && listed.contains("1.2.3.4/32 } accept"),
            "{listed}"
        );
        assert!(listed.ends_with("admin-prohibited\n  }\n}\n"), "{listed}");
        let slirp_net = listed.find("10.0.2.0/24").unwrap();
        assert!(
            listed.find("dport 53 accept").unwrap() < slirp_net,
            "{listed}"
        );
        assert!(slirp_net < listed.find("1.2.3.4/32").unwrap(), "{listed}");
        let open_net = open.find("10.0.2.0/24").unwrap();
        assert!(
            open_net < open.rfind("    accept").unwrap(),
            "10.0.2.3's other ports are refused: {open}"
        );
        let resolver = parse(json!({"allow_internet_access": false, "allow_out": ["10.0.2.0/30"]}))
            .unwrap()
            .ruleset(&[]);
        assert!(
            resolver.contains("dport 53 accept"),
            "a listed resolver answers: {resolver}"
        );
        let closed = parse(json!({"allow_internet_access": false}))
            .unwrap()
            .ruleset(&[]);
        assert!(
            !closed.contains("dport 53") && closed.ends_with("admin-prohibited\n  }\n}\n"),
            "{closed}"
        );
    }

    #[test]
    fn the_stored_form_round_trips() {
        let p = parse(json!({"allow_out": [" 10.0.0.1 "], "deny_out": ["0.0.0.0/0"]})).unwrap();
        let v = p.to_json();
        assert_eq!(
            v,
            json!({"allow_internet_access": true, "allow_out": ["10.0.0.1"], "deny_out": ["0.0.0.0/0"]})
        );
        assert_eq!(NetPolicy::from_stored(Some(&v)), p);
        assert!(NetPolicy::from_stored(None).allow_internet_access);
    }
}
