//! Host uids for sandboxes when the server runs as root: one unprivileged uid (and the gid of the
//! same number) per live sandbox, so uid 0 inside a jail is an ordinary, unique user on the host.

use std::collections::BTreeSet;
use std::sync::Mutex;

/// First host uid (and gid) given to a sandbox when the server runs as root.
///
/// The range is [`UID_BASE`] .. [`UID_BASE`] + [`UID_COUNT`] (1,900,000,000 to 1,900,065,535):
/// above systemd's container range (524,288 to 1,879,048,191, used by `systemd-nspawn
/// --private-users=pick`), below its foreign-uid range (from 2,147,352,576) and below 2^31 (tools
/// that store uids as signed 32-bit numbers still work), and far above the usual `/etc/subuid`
/// blocks (100,000 + 65,536 per user). Two servers run as root on one host share the range: their
/// sandboxes may then share uids (their files stay apart, in each server's 0700 data directory).
pub const UID_BASE: u32 = 1_900_000_000;

/// Number of uids in the range: at most this many live sandboxes per server run as root.
pub const UID_COUNT: u32 = 65_536;

/// Whether `uid` belongs to the sandbox range.
pub fn in_range(uid: u32) -> bool {
    (UID_BASE..UID_BASE + UID_COUNT).contains(&uid)
}

/// The uids of live sandboxes. The owner of a sandbox's root directory is its uid, so after a
/// restart the pool is rebuilt from the directories (no schema change).
#[derive(Default)]
pub struct UidPool {
    used: Mutex<BTreeSet<u32>>,
}

impl UidPool {
    /// Marks `uid` as taken (a sandbox found at start-up).
    pub fn claim(&self, uid: u32) {
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(uid);
    }

    /// The lowest free uid of the range, now taken; `None` when every one is in use.
    pub fn allocate(&self) -> Option<u32> {
        let mut used = self.used.lock().unwrap_or_else(|p| p.into_inner());
        let mut candidate = UID_BASE;
        for &u in used.range(UID_BASE..UID_BASE + UID_COUNT) {
            if u != candidate {
                break;
            }
            candidate += 1;
        }
        if !in_range(candidate) {
            return None;
        }
        used.insert(candidate);
        Some(candidate)
    }

    /// Gives `uid` back (its sandbox was deleted).
    pub fn release(&self, uid: u32) {
        self.used
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&uid);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lowest_free_uid_is_reused() {
        let pool = UidPool::default();
        let a = pool.allocate().unwrap();
        let b = pool.allocate().unwrap();
        assert_eq!((a, b), (UID_BASE, UID_BASE + 1));
        pool.release(a);
        assert_eq!(pool.allocate(), Some(UID_BASE));
        pool.claim(UID_BASE + 2);
        assert_eq!(pool.allocate(), Some(UID_BASE + 3));
    }
}
