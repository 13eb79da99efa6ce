//! CORS, API keys, and the browser-safety checks (Host and Origin).

mod common;

use common::{request, Server};
use serde_json::json;

const P: &str = "/v1/namespaces/default";

fn preflight(s: &Server, origin: &str, method: &str, headers: &str) -> common::Resp {
    s.req(
        "OPTIONS",
        &format!("{P}/sandboxes"),
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", method),
            ("Access-Control-Request-Headers", headers),
        ],
        None,
    )
}

#[test]
fn preflight_from_allowed_origins_succeeds() {
    let s = Server::start(&[]);
    for origin in [
        "http://localhost:5173",
        "http://127.0.0.1:3000",
        "http://localhost",
    ] {
        let r = preflight(&s, origin, "POST", "authorization, content-type, traceparent, x-tensorlake-sandbox-id, x-tensorlake-request-timeout-ms");
        assert_eq!(r.status, 204, "{origin}");
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        let methods = r.header("access-control-allow-methods").unwrap();
        for m in ["GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
            assert!(methods.contains(m), "{methods}");
        }
        let allowed = r
            .header("access-control-allow-headers")
            .unwrap()
            .to_ascii_lowercase();
        for h in [
            "authorization",
            "content-type",
            "traceparent",
            "x-tensorlake-sandbox-id",
            "x-tensorlake-request-timeout-ms",
        ] {
            assert!(allowed.contains(h), "{allowed}");
        }
        assert!(r.headers_named("vary").iter().any(|v| v.contains("Origin")));
        assert!(r.header("access-control-max-age").is_some());
        assert!(r.body.is_empty());
    }
    // Preflights need no API key even when one is required.
    let s = Server::start(&["--api-key", "k"]);
    assert_eq!(
        preflight(&s, "http://localhost:5173", "GET", "authorization").status,
        204
    );
}

#[test]
fn preflight_from_other_origins_or_with_other_headers_is_refused() {
    let s = Server::start(&[]);
    for origin in [
        "http://evil.example",
        "https://localhost:5173",
        "http://localhost.evil.example:80",
        "null",
    ] {
        let r = preflight(&s, origin, "POST", "content-type");
        assert_eq!(r.status, 403, "{origin}");
        assert!(r.header("access-control-allow-origin").is_none());
        assert!(r.header("access-control-allow-methods").is_none());
        assert!(r.text().contains("not allowed"));
    }
    let r = preflight(&s, "http://localhost:5173", "POST", "x-custom-header");
    assert_eq!(r.status, 403);
    assert!(r.text().contains("x-custom-header"), "{}", r.text());
    let r = preflight(&s, "http://localhost:5173", "TRACE", "");
    assert_eq!(r.status, 403);
}

#[test]
fn responses_to_allowed_origins_carry_cors_headers() {
    let s = Server::start(&[]);
    let r = s.req(
        "GET",
        &format!("{P}/snapshots"),
        &[("Origin", "http://localhost:5173")],
        None,
    );
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://localhost:5173")
    );
    assert!(r.headers_named("vary").iter().any(|v| v.contains("Origin")));
    let expose = r.header("access-control-expose-headers").unwrap();
    for h in ["Retry-After", "traceparent", "Content-Type"] {
        assert!(expose.contains(h), "{expose}");
    }
    // Errors and scripted faults carry them too: a browser client must read Retry-After.
    s.post_json(
        "/_admin/faults",
        &json!({"path": "*", "status": 429, "retry_after": "1"}),
    );
    let r = s.req(
        "GET",
        &format!("{P}/snapshots"),
        &[("Origin", "http://127.0.0.1:9999")],
        None,
    );
    assert_eq!(r.status, 429);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://127.0.0.1:9999")
    );
    let r = s.req(
        "GET",
        &format!("{P}/snapshots/nope"),
        &[("Origin", "http://127.0.0.1:9999")],
        None,
    );
    assert_eq!(r.status, 404);
    assert_eq!(
        r.header("access-control-allow-origin"),
        Some("http://127.0.0.1:9999")
    );
}

#[test]
fn other_origins_get_no_cors_headers_and_cannot_change_anything() {
    let s = Server::start(&[]);
    let r = s.req(
        "GET",
        &format!("{P}/snapshots"),
        &[("Origin", "http://evil.example")],
        None,
    );
    assert_eq!(r.status, 200);
    assert!(r.header("access-control-allow-origin").is_none());
    // A cross-site "simple" POST (no preflight in a browser) must not create anything.
    let r = s.req(
        "POST",
        &format!("{P}/sandboxes"),
        &[
            ("Origin", "http://evil.example"),
            ("Content-Type", "text/plain"),
        ],
        Some(b"{}"),
    );
    assert_eq!(r.status, 403);
    assert_eq!(
        s.get(&format!("{P}/sandboxes")).json()["sandboxes"],
        json!([])
    );
    let r = s.req(
        "POST",
        "/_admin/reset",
        &[("Origin", "http://evil.example")],
        None,
    );
    assert_eq!(r.status, 403);
    let r = s.req(
        "GET",
        "/_admin/requests",
        &[("Origin", "http://evil.example")],
        None,
    );
    assert_eq!(r.status, 403);
}

#[test]
fn explicit_cors_origins_replace_the_default() {
    let s = Server::start(&[
        "--cors-origin",
        "https://app.example",
        "--cors-origin",
        "https://two.example",
    ]);
    assert_eq!(preflight(&s, "https://app.example", "GET", "").status, 204);
    assert_eq!(preflight(&s, "https://two.example", "GET", "").status, 204);
    assert_eq!(
        preflight(&s, "http://localhost:5173", "GET", "").status,
        403
    );
    // The server's own origin (the demo served by --static) stays allowed.
    let own = format!("http://127.0.0.1:{}", s.port);
    assert_eq!(preflight(&s, &own, "POST", "content-type").status, 204);
    let s = Server::start(&["--cors-origin", "*"]);
    assert_eq!(
        preflight(&s, "https://anything.example", "GET", "").status,
        204
    );
}

#[test]
fn dns_rebinding_hosts_are_refused() {
    let s = Server::start(&[]);
    let r = s.req(
        "GET",
        &format!("{P}/snapshots"),
        &[("Host", "evil.example:8900")],
        None,
    );
    assert_eq!(r.status, 421);
    assert!(r.text().contains("Host"));
    let sb = s.sandbox();
    for host in [
        format!("localhost:{}", s.port),
        format!("{sb}.local"),
        format!("127.0.0.1:{}", s.port),
    ] {
        assert_eq!(
            s.req(
                "GET",
                &format!("{P}/snapshots"),
                &[("Host", host.as_str())],
                None
            )
            .status,
            200,
            "{host}"
        );
    }
}

#[test]
fn api_key_is_required_and_never_logged() {
    let key = "tl_apiKey_SuperSecret123";
    let s = Server::start(&["--api-key", key]);
    // Missing key.
    let r = s.get(&format!("{P}/snapshots"));
    assert_eq!(r.status, 401);
    assert!(r.content_type().starts_with("text/plain"));
    assert!(r.text().contains("Authorization: Bearer"), "{}", r.text());
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    // Wrong key, and a key that is a prefix of the right one.
    for wrong in [
        "Bearer nope",
        "Bearer tl_apiKey_SuperSecret12",
        "Basic dGVzdA==",
        &format!("Bearer {key}x"),
    ] {
        let r = s.req(
            "GET",
            &format!("{P}/snapshots"),
            &[("Authorization", wrong)],
            None,
        );
        assert_eq!(r.status, 401, "{wrong}");
        assert!(!r.text().contains(key));
    }
    let auth = format!("Bearer {key}");
    let h = [("Authorization", auth.as_str())];
    let r = s.req("GET", &format!("{P}/snapshots"), &h, None);
    assert_eq!(r.status, 200);
    let b = br#"{"resources":{"cpus":1.0,"memory_mb":1024}}"#;
    let r = s.req(
        "POST",
        &format!("{P}/sandboxes"),
        &[
            ("Authorization", auth.as_str()),
            ("Content-Type", "application/json"),
        ],
        Some(b),
    );
    assert_eq!(r.status, 200);
    let sb = r.json()["sandbox_id"].as_str().unwrap().to_string();
    // Process routes need it too, and answer in the daemon's JSON shape.
    let r = s.req(
        "POST",
        "/api/v1/processes/run",
        &[("X-Tensorlake-Sandbox-Id", sb.as_str())],
        Some(b"{\"command\":\"true\"}"),
    );
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["code"], "UNAUTHORIZED");
    let r = s.req(
        "POST",
        "/api/v1/processes/run",
        &[
            ("X-Tensorlake-Sandbox-Id", sb.as_str()),
            ("Authorization", auth.as_str()),
        ],
        Some(b"{\"command\":\"true\"}"),
    );
    assert_eq!(r.status, 200);
    // Static files need no key; the admin API does.
    assert_eq!(s.get("/_admin/requests").status, 401);
    assert_eq!(s.get("/").status, 200);
    // The key is in no log and no admin answer.
    let log = s.req("GET", "/_admin/requests", &h, None).text();
    assert!(log.contains("\"authorized\":true"));
    assert!(!log.contains(key) && !log.contains("SuperSecret"));
    common::eventually(10, "the request log line", || {
        s.stderr()
            .contains("GET /v1/namespaces/default/snapshots 401")
    });
    let stderr = s.stderr();
    assert!(!stderr.contains("SuperSecret"), "{stderr}");
    assert!(!s.stdout_rest().contains("SuperSecret"));
}

#[test]
fn api_key_from_the_environment() {
    let s = Server::start_in(
        common::temp_dir("envkey"),
        &[],
        &[("TENSORLAKE_LOCAL_API_KEY", "from-env")],
    );
    assert_eq!(s.get(&format!("{P}/snapshots")).status, 401);
    assert_eq!(
        request(
            s.port,
            "GET",
            &format!("{P}/snapshots"),
            &[("Authorization", "Bearer from-env")],
            None
        )
        .status,
        200
    );
}

/// Sends `head` (a request head without its final blank line) with a `{}` body, raw.
fn raw_post(s: &Server, head: &[u8]) -> common::Resp {
    use std::io::{Read, Write};
    let mut t = std::net::TcpStream::connect(("127.0.0.1", s.port)).unwrap();
    t.write_all(head).unwrap();
    t.write_all(b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        .unwrap();
    let mut raw = Vec::new();
    let _ = t.read_to_end(&mut raw);
    common::parse_response(&raw)
}

/// Requests no browser sends but a check could misread: two `Host` headers (the check read the
/// first, `localhost`), an absolute-form target naming another host (HTTP/1.1 says it wins
/// over `Host`), two `Origin` headers (the check read the first, an allowed one), and an
/// `Origin` that is not text (it was read as no `Origin` at all). Each created a sandbox;
/// each is now refused, and nothing is created.
#[test]
fn ambiguous_hosts_and_origins_are_refused() {
    let s = Server::start(&[]);
    let p = format!("{P}/sandboxes");
    let cases: Vec<(Vec<u8>, u16)> = vec![
        (format!("POST {p} HTTP/1.1\r\nHost: localhost\r\nHost: evil.example\r\n").into_bytes(), 421),
        (format!("POST {p} HTTP/1.1\r\nHost: evil.example\r\nHost: localhost\r\n").into_bytes(), 421),
        (format!("POST http://evil.example{p} HTTP/1.1\r\nHost: localhost\r\n").into_bytes(), 421),
        (
            format!("POST {p} HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost:1\r\nOrigin: http://evil.example\r\n")
                .into_bytes(),
            403,
        ),
        (
            [format!("POST {p} HTTP/1.1\r\nHost: localhost\r\nOrigin: http://evil.example").as_bytes(), b"\xff\r\n"]
                .concat(),
            403,
        ),
    ];
    for (head, want) in &cases {
        let r = raw_post(&s, head);
        assert_eq!(r.status, *want, "{}: {}", String::from_utf8_lossy(head), r.text());
    }
    assert_eq!(s.get(&p).json()["sandboxes"], json!([]), "nothing was created");
    // The plain forms still work.
    let ok = raw_post(&s, format!("POST http://localhost{p} HTTP/1.1\r\nHost: localhost\r\n").as_bytes());
    assert_eq!(ok.status, 200, "{}", ok.text());
}
