//! GB/T 28181 ids (component `gb28181`): one 20-digit id per camera, village
//! and grid, and one per speaker (a voice output channel), assigned once and
//! kept, so the county platform's tree does not reshuffle when cameras come
//! and go. An id is civil code (8) + industry `00` + type (3: 131 camera,
//! 137 voice output, 216 virtual organisation) + serial (7).

use std::collections::HashMap;

use rusqlite::{OptionalExtension, params};

use super::{Result, Store, StoreError};

/// Migrations of the `gb28181` component.
pub const MIGRATIONS: &[&str] = &[r#"
CREATE TABLE gb_id (
    kind TEXT NOT NULL,                  -- camera | village | grid
    ref TEXT NOT NULL,                   -- device id, village or grid code
    gb_id TEXT NOT NULL UNIQUE,
    updated_by TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    PRIMARY KEY (kind, ref)
);
"#];

/// What an id names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GbKind {
    /// A camera channel (type 131).
    Camera,
    /// A village (virtual organisation, type 216).
    Village,
    /// A grid (virtual organisation, type 216).
    Grid,
    /// A speaker as a voice output channel (type 137).
    Speaker,
}

impl GbKind {
    fn as_str(self) -> &'static str {
        match self {
            GbKind::Camera => "camera",
            GbKind::Village => "village",
            GbKind::Grid => "grid",
            GbKind::Speaker => "speaker",
        }
    }

    fn type_code(self) -> &'static str {
        match self {
            GbKind::Camera => "131",
            GbKind::Village | GbKind::Grid => "216",
            GbKind::Speaker => "137",
        }
    }
}

/// Checks a camera id a technician typed: 20 digits, type 131 or 132.
pub fn check_camera_id(id: &str) -> std::result::Result<(), String> {
    if id.len() != 20 || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("GB id `{id}` is not 20 digits"));
    }
    if !matches!(&id[10..13], "131" | "132") {
        return Err(format!(
            "GB id `{id}` has type {} at digits 11-13; a camera is 131 or 132",
            &id[10..13]
        ));
    }
    Ok(())
}

impl Store {
    /// The ids of `refs` of one kind, assigning the next free serial under
    /// `civil8` to those without one. Returns ref → id for `refs`.
    pub fn gb_ids_assign(
        &self,
        civil8: &str,
        kind: GbKind,
        refs: &[String],
    ) -> Result<HashMap<String, String>> {
        let now = self.now_str();
        let mut conn = self.conn();
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut out = HashMap::new();
        {
            let mut get =
                tx.prepare_cached("SELECT gb_id FROM gb_id WHERE kind = ?1 AND ref = ?2")?;
            let prefix = format!("{civil8}00{}", kind.type_code());
            let mut next: Option<u64> = None;
            for r in refs {
                if let Some(id) = get
                    .query_row(params![kind.as_str(), r], |row| row.get::<_, String>(0))
                    .optional()?
                {
                    out.insert(r.clone(), id);
                    continue;
                }
                let n = match next {
                    Some(n) => n,
                    None => {
                        let max: Option<String> = tx.query_row(
                            "SELECT MAX(gb_id) FROM gb_id WHERE gb_id LIKE ?1 || '%'",
                            [&prefix],
                            |row| row.get(0),
                        )?;
                        max.and_then(|m| m.get(13..)?.parse::<u64>().ok())
                            .map_or(1, |m| m + 1)
                    }
                };
                if n > 9_999_999 {
                    return Err(StoreError::Invalid(format!(
                        "no GB serial left under {prefix}"
                    )));
                }
                next = Some(n + 1);
                let id = format!("{prefix}{n:07}");
                tx.execute(
                    "INSERT INTO gb_id (kind, ref, gb_id, updated_by, updated_at) VALUES (?1, ?2, ?3, 'auto', ?4)",
                    params![kind.as_str(), r, id, now],
                )?;
                out.insert(r.clone(), id);
            }
        }
        tx.commit()?;
        Ok(out)
    }

    /// A camera's id, once assigned.
    pub fn camera_gb_id(&self, device_id: &str) -> Result<Option<String>> {
        self.with_conn(|c| {
            Ok(c.query_row(
                "SELECT gb_id FROM gb_id WHERE kind = 'camera' AND ref = ?1",
                [device_id],
                |r| r.get(0),
            )
            .optional()?)
        })
    }

    /// Sets a camera's id (a technician's edit): checked, and unique.
    pub fn set_camera_gb_id(&self, device_id: &str, gb_id: &str, by: &str) -> Result<()> {
        check_camera_id(gb_id).map_err(StoreError::Invalid)?;
        if self.device(device_id)?.is_none_or(|d| d.kind != "camera") {
            return Err(StoreError::NotFound {
                what: "camera",
                id: device_id.to_string(),
            });
        }
        let now = self.now_str();
        self.with_conn(|c| {
            let taken: Option<String> = c
                .query_row(
                    "SELECT ref FROM gb_id WHERE gb_id = ?1 AND NOT (kind = 'camera' AND ref = ?2)",
                    params![gb_id, device_id],
                    |r| r.get(0),
                )
                .optional()?;
            if let Some(other) = taken {
                return Err(StoreError::Invalid(format!(
                    "GB id `{gb_id}` is already used by `{other}`"
                )));
            }
            c.execute(
                "INSERT INTO gb_id (kind, ref, gb_id, updated_by, updated_at) VALUES ('camera', ?1, ?2, ?3, ?4)
                 ON CONFLICT(kind, ref) DO UPDATE SET gb_id = excluded.gb_id,
                   updated_by = excluded.updated_by, updated_at = excluded.updated_at",
                params![device_id, gb_id, by, now],
            )?;
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{sighting, store as temp_store};

    /// Ids are assigned once, kept, numbered on, and edits are checked.
    #[test]
    fn assign_keep_and_edit() {
        let (_d, store) = temp_store();
        let refs = vec!["a".to_string(), "b".to_string()];
        let m = store
            .gb_ids_assign("34020000", GbKind::Camera, &refs)
            .unwrap();
        assert_eq!(m["a"], "34020000001310000001");
        assert_eq!(m["b"], "34020000001310000002");
        let m2 = store
            .gb_ids_assign("34020000", GbKind::Camera, &["c".into(), "a".into()])
            .unwrap();
        assert_eq!(m2["a"], m["a"]);
        assert_eq!(m2["c"], "34020000001310000003");
        let v = store
            .gb_ids_assign("34020000", GbKind::Village, &["v1".into()])
            .unwrap();
        assert_eq!(v["v1"], "34020000002160000001");
        // Edits: bad shape, wrong type, unknown camera, taken id.
        assert!(store.set_camera_gb_id("a", "123", "tech").is_err());
        let e = store
            .set_camera_gb_id("a", "34020000002160000009", "tech")
            .unwrap_err();
        assert!(e.to_string().contains("131 or 132"), "{e}");
        let e = store
            .set_camera_gb_id("nope", "34020000001310000009", "tech")
            .unwrap_err();
        assert!(matches!(e, StoreError::NotFound { .. }), "{e}");
        let cam = store
            .record_sighting(&sighting("urn:uuid:gb1", [10, 0, 0, 5]))
            .unwrap()
            .id;
        let other = store
            .record_sighting(&sighting("urn:uuid:gb2", [10, 0, 0, 6]))
            .unwrap()
            .id;
        store
            .set_camera_gb_id(&cam, "34020000001310000009", "tech")
            .unwrap();
        let e = store
            .set_camera_gb_id(&other, "34020000001310000009", "tech")
            .unwrap_err();
        assert!(e.to_string().contains("already used"), "{e}");
        let m = store
            .gb_ids_assign("34020000", GbKind::Camera, std::slice::from_ref(&cam))
            .unwrap();
        assert_eq!(m[&cam], "34020000001310000009", "the edit is kept");
    }
}
