//! Change signals from the store's writers: every write to the device rows
//! (adoption, removal, village, inventory, sightings) or to the logins
//! (device logins, credential groups) bumps a counter in a
//! [`tokio::sync::watch`], whoever the writer is (HTTP handlers, discovery,
//! the probe worker). The poller's supervisor waits on it instead of
//! scanning the table every few seconds (issue 18). Writes from another
//! process (a CLI on the same data directory) are not seen: readers keep a
//! slow safety rescan.

use std::sync::Arc;

use rusqlite::Connection;
use rusqlite::hooks::Action;
use tokio::sync::watch;

/// Writes seen so far, per kind of table (counters; compare, don't read).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreChanges {
    /// Writes to `device` rows.
    pub devices: u64,
    /// Writes to `device_credential` and `credential_group` rows.
    pub logins: u64,
}

/// Installs the update hook on `conn`, bumping `tx`.
pub(super) fn watch_writes(conn: &mut Connection, tx: Arc<watch::Sender<StoreChanges>>) {
    let hook = move |_: Action, _db: &str, table: &str, _row: i64| match table {
        "device" => tx.send_modify(|c| c.devices = c.devices.wrapping_add(1)),
        "device_credential" | "credential_group" => {
            tx.send_modify(|c| c.logins = c.logins.wrapping_add(1))
        }
        _ => {}
    };
    // Only fails on a closed connection, which the store never has here.
    let _ = conn.update_hook(Some(hook));
}

#[cfg(test)]
mod tests {
    use crate::cameras::fake;
    use crate::store::Store;

    #[test]
    fn adoption_removal_and_logins_are_signalled_health_writes_are_not() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_in_memory(dir.path()).expect("store");
        let mut rx = store.changes();
        let id = fake::discovered(&store, 1, false);
        assert!(rx.has_changed().expect("open"), "a sighting");
        let seen = *rx.borrow_and_update();
        store.adopt(&id, None, None).expect("adopt");
        let after = *rx.borrow_and_update();
        assert!(after.devices > seen.devices, "adoption");
        assert_eq!(after.logins, seen.logins);
        store
            .set_device_login(&id, "admin", &crate::store::secrets::Password::new("pw"))
            .expect("login");
        let login = *rx.borrow_and_update();
        assert!(login.logins > after.logins, "a login change");
        let h = tgw_core::health::Health::new(time::OffsetDateTime::UNIX_EPOCH);
        store.save_health(&id, &h).expect("health");
        assert!(!rx.has_changed().expect("open"), "health is not a change");
        store.ignore(&id).expect("ignore");
        assert!(rx.borrow_and_update().devices > login.devices, "removal");
    }
}
