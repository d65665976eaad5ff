//! The sample township the demo and the simulator use: 青山镇 (Qingshan) with
//! eight villages and one community, each split into two to four grids.

use serde::{Deserialize, Serialize};

/// A township: the top of the township → village → grid → device hierarchy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Township {
    /// Stable code (pinyin), e.g. `qingshan`.
    pub code: String,
    /// Display name, e.g. `青山镇`.
    pub name: String,
    /// Villages and communities, in a fixed order.
    pub villages: Vec<Village>,
}

/// A village (村) or community (社区).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Village {
    /// Stable code, e.g. `qingshan-dongcun`.
    pub code: String,
    /// Display name, e.g. `东村`.
    pub name: String,
    /// `village` or `community`.
    pub kind: String,
    /// Its governance grids, in a fixed order (never empty).
    pub grids: Vec<Grid>,
}

/// A governance grid (网格).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grid {
    /// Stable code, e.g. `qingshan-dongcun-01`.
    pub code: String,
    /// Display name, e.g. `东村第一网格`.
    pub name: String,
}

const NUMERALS: [&str; 4] = ["一", "二", "三", "四"];

/// The sample township 青山镇 (Qingshan).
pub fn sample_township() -> Township {
    // (pinyin, name, kind, grids)
    let places: [(&str, &str, &str, usize); 9] = [
        ("dongcun", "东村", "village", 3),
        ("xicun", "西村", "village", 2),
        ("nanlingcun", "南岭村", "village", 4),
        ("beipocun", "北坡村", "village", 2),
        ("shiqiaocun", "石桥村", "village", 3),
        ("liuhecun", "柳河村", "village", 2),
        ("taoyuancun", "桃园村", "village", 3),
        ("longquancun", "龙泉村", "village", 2),
        ("shequ", "青山社区", "community", 4),
    ];
    let villages = places
        .iter()
        .map(|(py, name, kind, n)| {
            let code = format!("qingshan-{py}");
            let grids = NUMERALS
                .iter()
                .take(*n)
                .enumerate()
                .map(|(g, num)| Grid {
                    code: format!("{code}-{:02}", g + 1),
                    name: format!("{name}第{num}网格"),
                })
                .collect();
            Village {
                code,
                name: (*name).to_string(),
                kind: (*kind).to_string(),
                grids,
            }
        })
        .collect();
    Township {
        code: "qingshan".to_string(),
        name: "青山镇".to_string(),
        villages,
    }
}

impl Township {
    /// Where the device with this running index sits: villages round-robin,
    /// then the grids of that village round-robin. Deterministic.
    /// `None` only for a township without villages or grids.
    pub fn place(&self, index: usize) -> Option<(&Village, &Grid)> {
        let nv = self.villages.len();
        let village = self.villages.get(index.checked_rem(nv)?)?;
        let ng = village.grids.len();
        let grid = village.grids.get((index / nv).checked_rem(ng)?)?;
        Some((village, grid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// The sample has 8 villages + 1 community, 2-4 grids each, unique codes.
    #[test]
    fn sample_shape() {
        let t = sample_township();
        assert_eq!(t.name, "青山镇");
        assert_eq!(t.villages.len(), 9);
        assert_eq!(
            t.villages.iter().filter(|v| v.kind == "community").count(),
            1
        );
        let mut codes = HashSet::new();
        for v in &t.villages {
            assert!((2..=4).contains(&v.grids.len()), "{}", v.code);
            assert!(codes.insert(v.code.clone()));
            for g in &v.grids {
                assert!(g.code.starts_with(&v.code));
                assert!(g.name.starts_with(&v.name));
                assert!(codes.insert(g.code.clone()));
            }
        }
        assert_eq!(t.villages[0].code, "qingshan-dongcun");
        assert_eq!(t.villages[0].grids[0].name, "东村第一网格");
    }

    /// Devices spread over every village and every grid, the same way each time.
    #[test]
    fn placement_is_round_robin_and_covers_all_grids() {
        let t = sample_township();
        let total: usize = t.villages.iter().map(|v| v.grids.len()).sum();
        let mut seen = HashSet::new();
        for i in 0..(t.villages.len() * 4) {
            let (v, g) = t.place(i).unwrap();
            assert_eq!(v.code, t.villages[i % t.villages.len()].code);
            seen.insert(g.code.clone());
        }
        assert_eq!(seen.len(), total);
        assert_eq!(t.place(10), t.place(10));
    }
}
