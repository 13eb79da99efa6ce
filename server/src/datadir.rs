//! Keeps the data directory private to the user who runs the server.
//!
//! It holds the SQLite database, every sandbox's files and every snapshot archive; other local
//! users must not read it (secrets in sandbox files) nor walk into it (a setuid file left in a
//! sandbox tree). So the server runs with umask 077, which makes everything it creates 0600 or
//! 0700, and at start-up it tightens what an older server left behind (0755 and 0644).

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

/// Mode of the data directory and of the directories the server keeps in it.
pub const DIR_MODE: u32 = 0o700;
/// Mode of every file the server keeps in the data directory.
pub const FILE_MODE: u32 = 0o600;

/// Entries that mark a directory as a tensorlake-local data directory.
const OURS: [&str; 5] = ["lock", "state.sqlite", "sandboxes", "snapshots", "tmp"];

/// Sets the process umask to 077. Must run before any thread starts: the umask is per process.
pub fn set_private_umask() {
    // SAFETY: umask(2) cannot fail and touches no memory.
    unsafe {
        libc::umask(0o077);
    }
}

/// Refuses a directory that making private would harm: `/`, a shared directory with the sticky
/// bit (`/tmp`), or a non-empty directory that is not a data directory (a project checkout
/// passed by mistake would otherwise become 0700).
pub fn check_usable(dir: &Path) -> Result<(), String> {
    let meta = std::fs::metadata(dir)
        .map_err(|e| format!("cannot read the data directory {}: {e}", dir.display()))?;
    if dir.parent().is_none() {
        return Err("the data directory cannot be `/` (the server makes it private, 0700)".into());
    }
    if meta.mode() & libc::S_ISVTX != 0 {
        return Err(format!(
            "the data directory {} is a shared directory (sticky bit set, like /tmp); use a directory inside it, e.g. {}",
            dir.display(),
            dir.join("tensorlake-local").display()
        ));
    }
    let entries = std::fs::read_dir(dir)
        .map_err(|e| format!("cannot list the data directory {}: {e}", dir.display()))?;
    let mut empty = true;
    for entry in entries.flatten() {
        empty = false;
        if OURS.iter().any(|n| entry.file_name() == *n) {
            return Ok(());
        }
    }
    if empty {
        Ok(())
    } else {
        Err(format!(
            "the data directory {} is not empty and is not a tensorlake-local data directory; pass a new or empty directory (the server makes it private, 0700)",
            dir.display()
        ))
    }
}

/// Makes the data directory 0700 and what an older server left in it private: top-level
/// directories 0700, top-level files and the files in `snapshots/` and `tmp/` 0600. Symbolic
/// links are left alone (never followed). Sandbox trees are not touched: their modes belong to
/// the sandbox. Returns how many modes were changed.
pub fn tighten(data: &Path) -> Result<usize, String> {
    let mut changed = set_mode(data, DIR_MODE)?;
    let entries = std::fs::read_dir(data)
        .map_err(|e| format!("cannot list the data directory {}: {e}", data.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(meta) = std::fs::symlink_metadata(&path) else {
            continue;
        };
        if meta.is_dir() {
            changed += set_mode(&path, DIR_MODE)?;
            if entry.file_name() == "snapshots" || entry.file_name() == "tmp" {
                changed += tighten_files_in(&path)?;
            }
        } else if meta.is_file() {
            changed += set_mode(&path, FILE_MODE)?;
        }
    }
    Ok(changed)
}

/// Makes every regular file directly in `dir` 0600.
fn tighten_files_in(dir: &Path) -> Result<usize, String> {
    let mut changed = 0;
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(0);
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_file()) {
            changed += set_mode(&path, FILE_MODE)?;
        }
    }
    Ok(changed)
}

/// Sets the permission bits of `path` (not a symlink) to `mode`; 1 when they changed.
fn set_mode(path: &Path, mode: u32) -> Result<usize, String> {
    let meta = std::fs::symlink_metadata(path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    if meta.mode() & 0o7777 == mode {
        return Ok(0);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|e| {
        format!(
            "cannot make {} private (mode {mode:o}): {e}; the data directory must belong to the user running the server",
            path.display()
        )
    })?;
    Ok(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(tag: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("tl-datadir-{}-{tag}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn foreign_and_shared_directories_are_refused() {
        assert!(check_usable(Path::new("/")).is_err());
        assert!(check_usable(Path::new("/tmp")).is_err());
        let dir = scratch("foreign");
        assert!(check_usable(&dir).is_ok(), "empty is fine");
        std::fs::write(dir.join("Cargo.toml"), "x").unwrap();
        assert!(check_usable(&dir).is_err());
        std::fs::write(dir.join("state.sqlite"), "").unwrap();
        assert!(check_usable(&dir).is_ok());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn tighten_fixes_old_modes_and_leaves_links_alone() {
        let dir = scratch("tighten");
        let outside = scratch("tighten-outside");
        std::fs::create_dir_all(dir.join("snapshots")).unwrap();
        std::fs::write(dir.join("state.sqlite"), "").unwrap();
        std::fs::write(dir.join("snapshots/a.tar"), "").unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::set_permissions(
            dir.join("state.sqlite"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o755)).unwrap();
        let _ = std::os::unix::fs::symlink(&outside, dir.join("link"));
        assert!(tighten(&dir).unwrap() >= 3);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&dir.join("state.sqlite")), 0o600);
        assert_eq!(mode(&dir.join("snapshots/a.tar")), 0o600);
        assert_eq!(mode(&outside), 0o755, "a link is not followed");
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&outside);
    }
}
