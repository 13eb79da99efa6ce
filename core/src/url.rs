//! Just enough URL handling for API base URLs: split, validate, rebuild, percent-encode.
//!
//! The client needs three things: the host (to pick the routing rule), a rebuilt base with another
//! host, and encoded path segments. Measured (wasm built with `--profile wasm`, wasm-opt -Oz,
//! gzip -9): the `url` crate doing those three costs 71,155 bytes gzipped (78,130 → 149,285, most
//! of it IDNA tables), nearly twice the whole client and far over the 80 KB budget. The JS engine's
//! `URL` would cost nothing in wasm, but this crate runs natively under `cargo test`, with no JS
//! engine, and the routing rules it feeds are what those tests check. So it stays, covered by the
//! property tests.

/// An `http(s)://host[:port][/path]` URL, split into the parts the routing rules look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BaseUrl {
    /// `http` or `https`, lower-cased.
    pub scheme: String,
    /// Host name or IP literal, lower-cased; IPv6 literals keep their brackets.
    pub host: String,
    /// The explicit port, if the URL had one.
    pub port: Option<u16>,
    /// The path without a trailing slash (empty for the root).
    pub path: String,
}

impl BaseUrl {
    /// Parses an API base URL. Query strings and fragments are refused: a base URL has no use for
    /// them and silently dropping them would hide a configuration mistake.
    pub fn parse(input: &str) -> Result<BaseUrl, String> {
        let trimmed = input.trim();
        // What messages quote: never the part before an `@`, which would be a user and password.
        let shown = match trimmed.rfind('@') {
            Some(at) => format!("[redacted]{}", trimmed.get(at..).unwrap_or("")),
            None => trimmed.to_string(),
        };
        let bad = |why: &str| format!("\"{shown}\" {why}");
        let (scheme, rest) = crate::text::find(trimmed, "://")
            .and_then(|i| Some((trimmed.get(..i)?, trimmed.get(i + 3..)?)))
            .ok_or_else(|| bad("is not an absolute http(s) URL"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "http" && scheme != "https" {
            return Err(bad("must use http or https"));
        }
        if rest.contains(['?', '#']) {
            return Err(bad("must not contain a query string or fragment"));
        }
        let (authority, path) = match rest.find('/') {
            Some(i) => (rest.get(..i).unwrap_or(rest), rest.get(i..).unwrap_or("")),
            None => (rest, ""),
        };
        if authority.contains('@') {
            return Err(bad("must not carry credentials; use apiKey"));
        }
        let (host, port) = split_host_port(authority).ok_or_else(|| bad("has an invalid host or port"))?;
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(bad("has no host"));
        }
        Ok(BaseUrl { scheme, host: host.to_ascii_lowercase(), port, path: path.trim_end_matches('/').to_string() })
    }

    /// True for the loopback names the official SDKs treat as a local server.
    pub fn is_local(&self) -> bool {
        matches!(self.host.as_str(), "localhost" | "127.0.0.1" | "[::1]")
    }

    /// `scheme://host[:port]`, without the path.
    pub fn origin(&self) -> String {
        match self.port {
            Some(port) => format!("{}://{}:{}", self.scheme, self.host, port),
            None => format!("{}://{}", self.scheme, self.host),
        }
    }

    /// The whole base: origin plus path, never ending in `/`.
    pub fn to_base_string(&self) -> String {
        let mut s = self.origin();
        s.push_str(&self.path);
        s
    }
}

fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = (authority.get(..=end)?, authority.get(end + 1..)?);
        return match rest {
            "" => Some((host, None)),
            _ => Some((host, Some(parse_port(rest.strip_prefix(':')?)?))),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => Some((host, Some(parse_port(port)?))),
        None => Some((authority, None)),
    }
}

fn parse_port(s: &str) -> Option<u16> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Percent-encodes everything but RFC 3986 unreserved characters, like `encodeURIComponent` minus
/// its `!'()*` exceptions. Used for ids in paths and values in query strings, so an id such as
/// `a/../b` can never change which route a request hits.
pub fn encode_component(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    encode_component_into(&mut out, raw);
    out
}

/// [`encode_component`], appended to `out`.
pub fn encode_component_into(out: &mut String, raw: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in raw.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scheme_host_port_and_path() {
        let u = BaseUrl::parse("HTTPS://API.Tensorlake.ai:8443/prefix/").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.host, "api.tensorlake.ai");
        assert_eq!(u.port, Some(8443));
        assert_eq!(u.path, "/prefix");
        assert_eq!(u.to_base_string(), "https://api.tensorlake.ai:8443/prefix");
    }

    #[test]
    fn recognises_loopback_hosts() {
        for url in [
            "http://localhost:8900",
            "http://127.0.0.1",
            "http://[::1]:9000/x",
        ] {
            assert!(BaseUrl::parse(url).unwrap().is_local(), "{url}");
        }
        assert!(!BaseUrl::parse("http://127.0.0.2").unwrap().is_local());
        assert!(!BaseUrl::parse("http://localhost.evil.com")
            .unwrap()
            .is_local());
    }

    #[test]
    fn refuses_what_a_base_url_cannot_be() {
        for bad in [
            "api.tensorlake.ai",
            "ftp://x",
            "http://",
            "http://host:notaport",
            "http://host:99999",
            "http://user:pw@host",
            "http://user:pw@host/?q",
            "user:pw@host",
            "http://host/?q=1",
            "http://host/#f",
        ] {
            let err = BaseUrl::parse(bad).expect_err("should be refused");
            assert!(!err.contains("pw"), "the password is never repeated: {err}");
        }
    }

    #[test]
    fn encodes_everything_that_could_change_a_route() {
        assert_eq!(encode_component("snap-1_a.b~"), "snap-1_a.b~");
        assert_eq!(encode_component("a/../b?c#d"), "a%2F..%2Fb%3Fc%23d");
        assert_eq!(encode_component("é "), "%C3%A9%20");
    }
}
