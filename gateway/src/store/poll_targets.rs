//! What the health poller's supervisor scans: the adopted cameras' ids and
//! villages only (no inventory JSON parsed), so a re-scan of a thousand
//! cameras costs one small query.

use super::{Result, Store};

impl Store {
    /// Every adopted camera as `(id, village)`, ordered by id.
    pub fn adopted_camera_ids(&self) -> Result<Vec<(String, Option<String>)>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT id, village_code FROM device WHERE state = 'adopted' AND kind = 'camera' ORDER BY id",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }

    /// Every adopted camera with a stored inventory as `(id, inventory_at)`,
    /// ordered by id: what the event loops need to start, and to restart
    /// when an inventory changes, without reading (or parsing) inventories.
    pub fn adopted_camera_inventory_times(&self) -> Result<Vec<(String, Option<String>)>> {
        let conn = self.conn();
        let mut st = conn.prepare_cached(
            "SELECT id, inventory_at FROM device WHERE state = 'adopted' AND kind = 'camera' \
             AND inventory IS NOT NULL ORDER BY id",
        )?;
        let rows = st.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        let mut out = Vec::new();
        for r in rows {
            out.push(r?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::cameras::fake;
    use crate::store::Store;

    #[test]
    fn only_adopted_cameras_are_listed_with_their_village() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_in_memory(dir.path()).expect("store");
        let a = fake::adopted(&store, 1);
        let _inbox = fake::discovered(&store, 2, true);
        let c = fake::discovered(&store, 3, false);
        store.adopt(&c, None, None).expect("adopt");
        let d = fake::discovered(&store, 4, true);
        store.ignore(&d).expect("ignore");
        let mut want = vec![(a, None), (c, None)];
        want.sort();
        assert_eq!(store.adopted_camera_ids().expect("ids"), want);
    }

    #[test]
    fn only_adopted_cameras_with_an_inventory_are_listed_with_its_time() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open_in_memory(dir.path()).expect("store");
        let a = fake::adopted(&store, 1);
        let _inbox = fake::discovered(&store, 2, true);
        let c = fake::discovered(&store, 3, false);
        store.adopt(&c, None, None).expect("adopt");
        let rows = store.adopted_camera_inventory_times().expect("rows");
        let full = store.device(&a).expect("read").expect("row");
        assert!(full.inventory.is_some(), "the fake adopted camera has one");
        assert_eq!(rows, vec![(a, full.inventory_at)]);
    }
}
