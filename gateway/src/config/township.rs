//! `[township]`: the township, its villages (or communities) and grids.

use serde::{Deserialize, Serialize};

use super::Ident;

/// `[township]`: township → village/community → grid.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct TownshipSection {
    /// Short code, e.g. `qingshan`. Required.
    pub code: Ident,
    /// Display name, e.g. `青山镇`. Required.
    pub name: String,
    /// Villages and communities. Default: none.
    #[serde(default)]
    pub villages: Vec<VillageConfig>,
}

/// `[[township.villages]]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct VillageConfig {
    /// Unique code, e.g. `dongcun`. Required.
    pub code: Ident,
    /// Display name, e.g. `东村`. Required.
    pub name: String,
    /// `village` or `community`. Default: `village`.
    #[serde(default)]
    pub kind: VillageKind,
    /// Grids (网格) of this village. Default: none.
    #[serde(default)]
    pub grids: Vec<GridConfig>,
}

/// Village or community (社区).
#[derive(Debug, Clone, Copy, Default, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum VillageKind {
    /// 村
    #[default]
    Village,
    /// 社区
    Community,
}

impl VillageKind {
    /// Stable string form stored in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            VillageKind::Village => "village",
            VillageKind::Community => "community",
        }
    }
}

/// `grids = [{ code = "...", name = "..." }]`
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GridConfig {
    /// Unique code across the township, e.g. `dongcun-1`. Required.
    pub code: Ident,
    /// Display name, e.g. `东村第一网格`. Required.
    pub name: String,
    /// Micro-grids (微网格) of this grid: the same shape, codes unique
    /// across grids and micro-grids of the township. Devices are adopted
    /// into a micro-grid by giving its code as their grid. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub micro_grids: Vec<MicroGridConfig>,
}

/// `micro_grids = [{ code = "...", name = "..." }]` of a grid.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MicroGridConfig {
    /// Unique code across the township's grids and micro-grids, e.g.
    /// `dongcun-1-a`. Required.
    pub code: Ident,
    /// Display name, e.g. `东村第一网格第一微网格`. Required.
    pub name: String,
}
