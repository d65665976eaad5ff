//! The catalog tree the platform sees: one 业务分组 (business group) for the
//! township, its villages, their grids and the grids' micro-grids (微网格)
//! as 虚拟组织 (virtual organisations) with `ParentID` links, and the
//! adopted cameras under their micro-grid or grid (else village, else the
//! group), each with its status from our health
//! verdict (degraded counts as ON) and its map position when known; and
//! every speaker as a voice output channel (type 137) under its grid (else
//! village, else the group), which the platform can broadcast to.

use std::collections::HashMap;

use device_drivers::gb28181::manscdp::{CatalogItem, ItemKind};
use tgw_core::health::Verdict;

use crate::store::gb_ids::GbKind;
use crate::store::{Store, StoreError};

/// A camera as the catalog knows it, for lookups by GB id.
#[derive(Debug, Clone)]
pub struct Channel {
    /// Our device id.
    pub device_id: String,
    /// Its GB id.
    pub gb_id: String,
    /// ON or OFF now.
    pub online: bool,
}

/// The whole tree, and the cameras by GB id.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Business group, villages, grids, micro-grids, cameras, in that order.
    pub items: Vec<CatalogItem>,
    /// Cameras by GB id.
    pub channels: HashMap<String, Channel>,
    /// Speakers (voice output channels): GB id → speaker id.
    pub voice: HashMap<String, String>,
}

impl Catalog {
    /// The camera entry of device `id`, if it is in the tree.
    pub fn item_of(&self, device_id: &str) -> Option<&CatalogItem> {
        let gb = self
            .channels
            .values()
            .find(|c| c.device_id == device_id)?
            .gb_id
            .clone();
        self.items.iter().find(|i| i.device_id == gb)
    }
}

/// ON for ok and degraded; OFF for offline and never polled.
pub fn online(verdict: Option<&Verdict>) -> bool {
    matches!(verdict, Some(Verdict::Ok | Verdict::Degraded(_)))
}

/// The business group id of the township.
pub fn group_id(civil8: &str) -> String {
    format!("{civil8}002150000001")
}

/// Builds the tree from the store, assigning ids that are missing.
pub fn build(store: &Store, civil8: &str) -> Result<Catalog, StoreError> {
    let (_, township_name) = store.township_row()?;
    let villages = store.villages()?;
    let cameras = store.camera_rows()?;
    let places: HashMap<String, (Option<f64>, Option<f64>)> = store
        .places()?
        .into_iter()
        .filter(|p| p.kind == "camera")
        .map(|p| (p.id.clone(), (p.lon, p.lat)))
        .collect();
    let v_refs: Vec<String> = villages.iter().map(|v| v.code.clone()).collect();
    let g_refs: Vec<String> = villages
        .iter()
        .flat_map(|v| {
            v.grids
                .iter()
                .map(|g| g.0.clone())
                .chain(v.micro_grids.iter().map(|m| m.0.clone()))
        })
        .collect();
    let c_refs: Vec<String> = cameras.iter().map(|c| c.id.clone()).collect();
    let v_ids = store.gb_ids_assign(civil8, GbKind::Village, &v_refs)?;
    let g_ids = store.gb_ids_assign(civil8, GbKind::Grid, &g_refs)?;
    let c_ids = store.gb_ids_assign(civil8, GbKind::Camera, &c_refs)?;
    // No speaker table until the speakers component has migrated: no horns.
    let speakers = store.speaker_rows(None).unwrap_or_else(|e| {
        tracing::debug!(error = %e, "GB/T 28181 catalog: no speakers read");
        Vec::new()
    });
    let s_refs: Vec<String> = speakers.iter().map(|s| s.id.clone()).collect();
    let s_ids = store.gb_ids_assign(civil8, GbKind::Speaker, &s_refs)?;
    let group = group_id(civil8);
    let org = |id: String, name: String, parent: String| CatalogItem {
        device_id: id,
        kind: ItemKind::VirtualOrg,
        name,
        parent_id: Some(parent),
        civil_code: civil8.to_string(),
        business_group_id: Some(group.clone()),
        manufacturer: None,
        model: None,
        address: None,
        online: true,
        longitude: None,
        latitude: None,
        event: None,
    };
    let mut items = vec![CatalogItem {
        device_id: group.clone(),
        kind: ItemKind::BusinessGroup,
        name: township_name,
        parent_id: None,
        civil_code: civil8.to_string(),
        business_group_id: None,
        manufacturer: None,
        model: None,
        address: None,
        online: true,
        longitude: None,
        latitude: None,
        event: None,
    }];
    for v in &villages {
        items.push(org(v_ids[&v.code].clone(), v.name.clone(), group.clone()));
    }
    for v in &villages {
        for (code, name) in &v.grids {
            items.push(org(
                g_ids[code].clone(),
                name.clone(),
                v_ids[&v.code].clone(),
            ));
        }
    }
    for v in &villages {
        for (code, name, grid) in &v.micro_grids {
            items.push(org(g_ids[code].clone(), name.clone(), g_ids[grid].clone()));
        }
    }
    let mut channels = HashMap::new();
    for c in &cameras {
        let gb = c_ids[&c.id].clone();
        let parent = c
            .grid
            .as_ref()
            .and_then(|g| g_ids.get(g))
            .or_else(|| c.village.as_ref().and_then(|v| v_ids.get(v)))
            .cloned()
            .unwrap_or_else(|| group.clone());
        let on = online(c.health.as_ref().map(|h| &h.verdict));
        let (lon, lat) = places.get(&c.id).copied().unwrap_or((None, None));
        items.push(CatalogItem {
            device_id: gb.clone(),
            kind: ItemKind::Camera,
            name: c.name.clone().unwrap_or_else(|| c.id.clone()),
            parent_id: Some(parent),
            civil_code: civil8.to_string(),
            business_group_id: Some(group.clone()),
            manufacturer: c.manufacturer.clone(),
            model: c.model.clone(),
            address: c.address.clone(),
            online: on,
            longitude: lon,
            latitude: lat,
            event: None,
        });
        channels.insert(
            gb.clone(),
            Channel {
                device_id: c.id.clone(),
                gb_id: gb,
                online: on,
            },
        );
    }
    let mut voice = HashMap::new();
    for s in &speakers {
        let gb = s_ids[&s.id].clone();
        let parent = s
            .grid
            .as_ref()
            .and_then(|g| g_ids.get(g))
            .or_else(|| s.village.as_ref().and_then(|v| v_ids.get(v)))
            .cloned()
            .unwrap_or_else(|| group.clone());
        items.push(CatalogItem {
            device_id: gb.clone(),
            kind: ItemKind::VoiceOutput,
            name: s.name.clone().unwrap_or_else(|| s.id.clone()),
            parent_id: Some(parent),
            civil_code: civil8.to_string(),
            business_group_id: Some(group.clone()),
            manufacturer: None,
            model: Some(s.kind.clone()),
            address: None,
            online: true,
            longitude: None,
            latitude: None,
            event: None,
        });
        voice.insert(gb, s.id.clone());
    }
    Ok(Catalog {
        items,
        channels,
        voice,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::testing::{sighting, store};

    /// Villages hang off the group, grids off their village, micro-grids
    /// off their grid, cameras off their grid or micro-grid; a never-polled
    /// camera is OFF; ids survive a rebuild.
    #[test]
    fn tree_links_and_status() {
        let (_d, s) = store();
        let a = s
            .record_sighting(&sighting("urn:uuid:c1", [10, 0, 0, 7]))
            .unwrap()
            .id;
        let villages = s.villages().unwrap();
        let v = &villages[0];
        let g = v.grids.first().map(|g| g.0.clone());
        s.adopt(&a, Some(&v.code), g.as_deref()).unwrap();
        let cat = build(&s, "34020000").unwrap();
        let group = group_id("34020000");
        assert_eq!(cat.items[0].kind, ItemKind::BusinessGroup);
        let village = cat.items.iter().find(|i| i.name == v.name).unwrap();
        assert_eq!(village.parent_id.as_deref(), Some(group.as_str()));
        let cam = cat.item_of(&a).unwrap();
        assert!(!cam.online, "never polled is OFF");
        assert_eq!(&cam.device_id[10..13], "131");
        let parent = cat
            .items
            .iter()
            .find(|i| Some(&i.device_id) == cam.parent_id.as_ref())
            .unwrap();
        assert_eq!(parent.kind, ItemKind::VirtualOrg);
        if g.is_some() {
            assert_eq!(
                parent.parent_id.as_ref(),
                Some(&village.device_id),
                "grid under its village"
            );
        }
        // A micro-grid hangs off its grid, and a camera in it off the micro-grid.
        let mut cfg =
            crate::config::Config::parse(include_str!("../../../config/gateway.example.toml"), "x")
                .unwrap();
        cfg.township.villages.truncate(1);
        s.sync_township(&cfg.township).unwrap();
        s.adopt(&a, None, Some("dongcun-1-b")).unwrap();
        let cat = build(&s, "34020000").unwrap();
        let grid = cat.items.iter().find(|i| i.name == "东村第一网格").unwrap();
        let micro = cat
            .items
            .iter()
            .find(|i| i.name == "东村第一网格二组")
            .unwrap();
        assert_eq!(micro.kind, ItemKind::VirtualOrg);
        assert_eq!(micro.parent_id.as_ref(), Some(&grid.device_id));
        assert_eq!(
            cat.item_of(&a).unwrap().parent_id.as_ref(),
            Some(&micro.device_id)
        );
        let again = build(&s, "34020000").unwrap();
        assert_eq!(again.item_of(&a).unwrap().device_id, cam.device_id);
        assert!(online(Some(&Verdict::Degraded(Default::default()))));
        assert!(!online(Some(&Verdict::Offline)));
    }

    /// Each speaker is a voice output channel (type 137) under its village,
    /// found by GB id in `voice`; its id survives a rebuild.
    #[test]
    fn speakers_are_voice_channels() {
        use crate::store::speakers::{SpeakerBatch, SpeakerWrite};
        let (_d, s) = store();
        s.migrate("speakers", crate::store::migrations::SPEAKER_MIGRATIONS)
            .unwrap();
        let villages = s.villages().unwrap();
        let v = &villages[0];
        let w = SpeakerWrite {
            id: "horn-1",
            name: Some("东口喇叭"),
            kind: "rtp",
            address: "127.0.0.1:5004",
            village: Some(&v.code),
            grid: None,
            zone: None,
            codec: "pcmu",
            volume: None,
            username: None,
            password: None,
        };
        s.upsert_speakers(&SpeakerBatch {
            speakers: vec![w],
            ..Default::default()
        })
        .unwrap();
        let cat = build(&s, "34020000").unwrap();
        let (gb, speaker) = cat.voice.iter().next().unwrap();
        assert_eq!(speaker, "horn-1");
        assert_eq!(&gb[10..13], "137");
        let item = cat.items.iter().find(|i| &i.device_id == gb).unwrap();
        assert_eq!(item.kind, ItemKind::VoiceOutput);
        assert_eq!(item.name, "东口喇叭");
        let village = cat.items.iter().find(|i| i.name == v.name).unwrap();
        assert_eq!(item.parent_id.as_ref(), Some(&village.device_id));
        assert!(!cat.channels.contains_key(gb), "not a camera");
        assert_eq!(
            build(&s, "34020000")
                .unwrap()
                .voice
                .get(gb)
                .map(String::as_str),
            Some("horn-1")
        );
    }
}
