//! `--static DIR`: files, MIME types, index.html, and no way out of DIR.

mod common;

use common::{Scratch, Server};

/// The site directory, and a directory outside it that links point to.
fn site() -> (Scratch, Scratch) {
    let dir = Scratch::new("site");
    std::fs::create_dir_all(dir.join("www")).unwrap();
    std::fs::create_dir_all(dir.join("pkg")).unwrap();
    std::fs::write(dir.join("index.html"), "<!doctype html><title>root</title>").unwrap();
    std::fs::write(
        dir.join("www/index.html"),
        "<!doctype html><title>demo</title>",
    )
    .unwrap();
    std::fs::write(dir.join("www/app.js"), "export const x = 1;").unwrap();
    std::fs::write(dir.join("www/style.css"), "body{}").unwrap();
    std::fs::write(dir.join("pkg/lib.mjs"), "export {}").unwrap();
    std::fs::write(dir.join("pkg/lib_bg.wasm"), b"\0asm\x01\0\0\0").unwrap();
    std::fs::write(dir.join("pkg/package.json"), "{}").unwrap();
    std::fs::write(dir.join("pkg/logo.png"), b"\x89PNG").unwrap();
    std::fs::write(dir.join("with space.txt"), "spaced").unwrap();
    let outside = Scratch::new("outside");
    std::fs::write(outside.join("secret.txt"), "OUTSIDE").unwrap();
    std::os::unix::fs::symlink(outside.join("secret.txt"), dir.join("www/leak.txt")).unwrap();
    std::os::unix::fs::symlink(&*outside, dir.join("outdir")).unwrap();
    (dir, outside)
}

#[test]
fn serves_files_with_browser_mime_types() {
    let (dir, _outside) = site();
    let s = Server::start(&["--static", dir.to_str().unwrap()]);
    for (path, mime, body) in [
        ("/", "text/html", "root"),
        ("/www/", "text/html", "demo"),
        ("/www/index.html", "text/html", "demo"),
        ("/www/app.js", "text/javascript", "export const x"),
        ("/www/style.css", "text/css", "body"),
        ("/pkg/lib.mjs", "text/javascript", "export"),
        ("/pkg/lib_bg.wasm", "application/wasm", "asm"),
        ("/pkg/package.json", "application/json", "{}"),
        ("/pkg/logo.png", "image/png", "PNG"),
        ("/with%20space.txt", "text/plain", "spaced"),
    ] {
        let r = s.get(path);
        assert_eq!(r.status, 200, "{path}");
        assert!(
            r.content_type().starts_with(mime),
            "{path}: {}",
            r.content_type()
        );
        assert!(r.text().contains(body), "{path}");
    }
    // A directory without its slash redirects, so relative URLs in the page work.
    let r = s.get("/www");
    assert_eq!(r.status, 301);
    assert_eq!(r.header("location"), Some("/www/"));
    let r = s.req("HEAD", "/www/app.js", &[], None);
    assert_eq!(r.status, 200);
    // The API still wins over files.
    assert_eq!(
        s.get("/v1/namespaces/default/snapshots").json()["snapshots"],
        serde_json::json!([])
    );
    assert_eq!(s.get("/missing.js").status, 404);
}

#[test]
fn no_way_out_of_the_directory() {
    let (dir, _outside) = site();
    let s = Server::start(&["--static", dir.to_str().unwrap()]);
    for path in [
        "/../outside/secret.txt",
        "/%2e%2e/%2e%2e/etc/passwd",
        "/www/..%2f..%2fetc%2fpasswd",
        "/www/leak.txt",
        "/outdir/secret.txt",
        "/a%5c..%5csecret",
    ] {
        let r = s.get(path);
        assert!(r.status == 404 || r.status == 400, "{path}: {}", r.status);
        assert!(
            !r.text().contains("OUTSIDE") && !r.text().contains("root:x:"),
            "{path} leaked"
        );
    }
}

#[test]
fn a_missing_static_dir_is_a_startup_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tensorlake-local"))
        .args(["--port", "0", "--static", "/nonexistent/dir", "--data-dir"])
        .arg(&*Scratch::new("nostatic"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--static /nonexistent/dir"));
}
