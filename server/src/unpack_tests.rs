//! Restores of crafted archives and poisoned roots.

use super::*;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// An entry with exactly these bytes as its name (the tar crate's setters refuse `..`).
fn raw(
    t: &mut tar::Builder<impl std::io::Write>,
    name: &[u8],
    kind: EntryType,
    link: &[u8],
    data: &[u8],
    mode: u32,
) {
    let mut h = tar::Header::new_gnu();
    if let Some(g) = h.as_gnu_mut() {
        g.name[..name.len()].copy_from_slice(name);
        g.linkname[..link.len()].copy_from_slice(link);
    }
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_size(data.len() as u64);
    h.set_cksum();
    t.append(&h, data).unwrap();
}

fn crafted(path: &Path, outside: &Path) {
    let gz =
        flate2::write::GzEncoder::new(File::create(path).unwrap(), flate2::Compression::fast());
    let mut t = tar::Builder::new(gz);
    let out = outside.as_os_str().as_bytes();
    raw(&mut t, b"fifo", EntryType::Fifo, b"", b"", 0o644);
    raw(&mut t, b"dev", EntryType::Char, b"", b"", 0o666);
    raw(&mut t, b"blk", EntryType::Block, b"", b"", 0o666);
    raw(&mut t, b"../escape", EntryType::Regular, b"", b"x", 0o644);
    raw(
        &mut t,
        b"a/../../escape2",
        EntryType::Regular,
        b"",
        b"x",
        0o644,
    );
    let mut abs = out.to_vec();
    abs.extend_from_slice(b"/abs");
    raw(&mut t, &abs, EntryType::Regular, b"", b"x", 0o644);
    raw(
        &mut t,
        b"hl-out",
        EntryType::Link,
        b"../outside/keep",
        b"",
        0o644,
    );
    raw(
        &mut t,
        b"hl-abs",
        EntryType::Link,
        b"/etc/passwd",
        b"",
        0o644,
    );
    // A link to the host directory, then entries through it.
    raw(&mut t, b"tmp", EntryType::Symlink, out, b"", 0o777);
    raw(&mut t, b"tmp/planted", EntryType::Regular, b"", b"x", 0o644);
    raw(
        &mut t,
        b"tmp/sub/planted",
        EntryType::Regular,
        b"",
        b"x",
        0o644,
    );
    raw(&mut t, b"usr/bin/x", EntryType::Regular, b"", b"x", 0o644);
    // What is fine: a setuid file (restored without the bit) and a hard link to it.
    raw(&mut t, b"ok/file", EntryType::Regular, b"", b"data", 0o4755);
    raw(&mut t, b"ok/same", EntryType::Link, b"ok/file", b"", 0o644);
    raw(
        &mut t,
        b"ok/file",
        EntryType::Symlink,
        b"/etc/shadow",
        b"",
        0o777,
    );
    raw(
        &mut t,
        b"ok/file2",
        EntryType::Regular,
        b"",
        b"more",
        0o2644,
    );
    t.into_inner().unwrap().finish().unwrap();
}

#[test]
fn crafted_archives_write_nothing_outside_the_root() {
    let base = std::env::temp_dir().join(format!("unpack-{}", crate::model::new_id("")));
    let outside = base.join("outside");
    let root = base.join("sb/root");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    std::fs::write(outside.join("keep"), b"host").unwrap();
    let archive = base.join("a.tar.gz");
    crafted(&archive, &outside);
    let fd = fsx::open_dir(&root).unwrap();
    let report = extract(&archive, &fd, false).unwrap();
    fsx::standard_dirs(&fd).unwrap();
    let mut host: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    host.sort();
    assert_eq!(host, vec![std::ffi::OsString::from("keep")]);
    assert_eq!(std::fs::metadata(&outside).unwrap().mode() & 0o7777, 0o755);
    assert!(!base.join("escape").exists() && !base.join("sb/escape").exists());
    assert!(!base.join("escape2").exists() && !base.join("sb/escape2").exists());
    for gone in ["fifo", "dev", "blk", "hl-out", "hl-abs", "usr", "abs"] {
        assert!(
            std::fs::symlink_metadata(root.join(gone)).is_err(),
            "{gone}"
        );
    }
    assert_eq!(std::fs::read_link(root.join("tmp")).unwrap(), outside);
    assert_eq!(std::fs::read(root.join("ok/same")).unwrap(), b"data");
    assert_eq!(
        std::fs::metadata(root.join("ok/same")).unwrap().mode() & 0o7777,
        0o755
    );
    assert_eq!(
        std::fs::read_link(root.join("ok/file")).unwrap(),
        PathBuf::from("/etc/shadow")
    );
    assert_eq!(
        std::fs::metadata(root.join("ok/file2")).unwrap().mode() & 0o7777,
        0o644
    );
    assert!(root.join("root").is_dir());
    assert!(report.skipped >= 10, "{report:?}");
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn standard_dirs_never_follow_a_link_or_replace_a_file() {
    let base = std::env::temp_dir().join(format!("unpack-std-{}", crate::model::new_id("")));
    let host = base.join("host");
    let root = base.join("root");
    std::fs::create_dir_all(&host).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    std::os::unix::fs::symlink(&host, root.join("tmp")).unwrap();
    std::os::unix::fs::symlink(base.join("missing"), root.join("root")).unwrap();
    fsx::standard_dirs(&fsx::open_dir(&root).unwrap()).unwrap();
    assert_eq!(std::fs::metadata(&host).unwrap().mode() & 0o7777, 0o755);
    assert!(!base.join("missing").exists());
    std::fs::remove_file(root.join("tmp")).unwrap();
    std::fs::write(root.join("tmp"), b"a file").unwrap();
    fsx::standard_dirs(&fsx::open_dir(&root).unwrap()).unwrap();
    assert_eq!(std::fs::read(root.join("tmp")).unwrap(), b"a file");
    std::fs::remove_dir_all(&base).unwrap();
}

#[test]
fn into_a_layer_whiteouts_and_opaque_dirs_are_made_and_nothing_else_special() {
    let base = std::env::temp_dir().join(format!("unpack-layer-{}", crate::model::new_id("")));
    let outside = base.join("outside");
    let upper = base.join("sb/layer/upper");
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::create_dir_all(&upper).unwrap();
    std::fs::write(outside.join("keep"), b"host").unwrap();
    let archive = base.join("a.tar.gz");
    crafted(&archive, &outside);
    let fd = fsx::open_dir(&upper).unwrap();
    extract(&archive, &fd, true).unwrap();
    let mut host: Vec<_> = std::fs::read_dir(&outside)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    host.sort();
    assert_eq!(host, vec![std::ffi::OsString::from("keep")]);
    // `dev` (a character device 0/0) is a system directory's name: skipped even as a whiteout.
    for gone in ["fifo", "dev", "blk", "hl-out", "hl-abs", "abs"] {
        assert!(std::fs::symlink_metadata(upper.join(gone)).is_err(), "{gone}");
    }

    // What `archive` writes for a layer: whiteouts and an opaque directory round-trip.
    let src = base.join("src");
    std::fs::create_dir_all(src.join("etc/replaced")).unwrap();
    std::fs::write(src.join("etc/replaced/new"), b"n").unwrap();
    std::fs::create_dir_all(src.join("usr/local/bin")).unwrap();
    std::fs::write(src.join("usr/local/bin/tool"), b"t").unwrap();
    let c = fsx::cstr(b"gone").unwrap();
    let etc = fsx::open_dir(&src.join("etc")).unwrap();
    // SAFETY: mknodat on a valid dirfd with a NUL-terminated name.
    assert_eq!(unsafe { libc::mknodat(etc.as_raw_fd(), c.as_ptr(), libc::S_IFCHR, 0) }, 0);
    let p = std::ffi::CString::new(src.join("etc/replaced").as_os_str().as_bytes()).unwrap();
    // SAFETY: setxattr with NUL-terminated strings and a 1-byte value.
    let rc = unsafe {
        libc::setxattr(p.as_ptr(), c"trusted.overlay.opaque".as_ptr(), b"y".as_ptr().cast(), 1, 0)
    };
    assert_eq!(rc, 0, "{}", io::Error::last_os_error());
    std::fs::create_dir_all(base.join("tmp")).unwrap();
    let snap = base.join("layer.tar.zst");
    crate::archive::create(&src, &base.join("tmp/x"), &snap, true).unwrap();
    let out = base.join("out");
    std::fs::create_dir_all(&out).unwrap();
    extract(&snap, &fsx::open_dir(&out).unwrap(), true).unwrap();
    let gone = std::fs::symlink_metadata(out.join("etc/gone")).unwrap();
    assert_eq!(gone.mode() & libc::S_IFMT, libc::S_IFCHR);
    let q = std::ffi::CString::new(out.join("etc/replaced").as_os_str().as_bytes()).unwrap();
    let mut v = [0u8; 4];
    // SAFETY: getxattr into a buffer of the given length.
    let n = unsafe {
        libc::getxattr(q.as_ptr(), c"trusted.overlay.opaque".as_ptr(), v.as_mut_ptr().cast(), 4)
    };
    assert_eq!(&v[..n.max(0) as usize], b"y");
    assert_eq!(std::fs::read(out.join("usr/local/bin/tool")).unwrap(), b"t");
    // Not layered: neither is restored, and `usr` stays the jail's.
    let plain = base.join("plain");
    std::fs::create_dir_all(&plain).unwrap();
    extract(&snap, &fsx::open_dir(&plain).unwrap(), false).unwrap();
    assert!(std::fs::symlink_metadata(plain.join("etc/gone")).is_err());
    assert!(!plain.join("usr").exists());
    std::fs::remove_dir_all(&base).unwrap();
}
