//! What `tgw demo` puts in its store before the gateway starts: the
//! simulated horns in the speaker inventory, a realistic timetable held in
//! the store (so the dashboard can edit it), and the auto-adopt networks that
//! leave a few cameras in the discovery inbox.

use std::net::Ipv4Addr;

/// The workday calendar the demo's timetable follows (2026, from the State
/// Council notice; see the file's header).
pub const CALENDAR: &str = include_str!("../../../config/workdays-cn-2026.example.txt");

/// Imports the simulator's horns into the speaker inventory (their logins
/// sealed like any other); returns how many.
pub fn import_sim_speakers(
    store: &crate::store::Store,
    manifest: &device_sim::Manifest,
) -> anyhow::Result<usize> {
    use crate::config::Ident;
    use crate::speakers::{Codec, DriverKind, NewSpeaker, Speakers};
    use crate::store::secrets::Password;
    use device_drivers::speaker::SpeakerUri;
    let mut list = Vec::new();
    for d in manifest.devices.iter().filter(|d| d.kind == "speaker") {
        let Some(text) = d.uri.as_deref().or(d.rtp.as_deref()) else {
            continue;
        };
        let uri: SpeakerUri = match text.parse() {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(speaker = %d.id, error = %e, "demo speaker not importable; skipped");
                continue;
            }
        };
        let id = Ident::parse(&d.id).map_err(|e| anyhow::anyhow!("{e}"))?;
        let mut s = NewSpeaker {
            id,
            name: Some(format!("模拟喇叭 {}", d.id)),
            kind: DriverKind::Rtp,
            address: String::new(),
            village: Some(d.village.clone()),
            grid: Some(d.grid.clone()),
            zone: None,
            codec: Codec::Pcmu,
            volume: Some(80),
            ttl: None,
            username: None,
            password: None,
        };
        if let SpeakerUri::Rtp {
            dest, codec, ttl, ..
        } = &uri
        {
            s.address = dest.to_string();
            if matches!(codec, device_drivers::g711::Codec::Pcma) {
                s.codec = Codec::Pcma;
            }
            if dest.ip().is_multicast() {
                s.kind = DriverKind::RtpMulticast;
                let zone = format!("zone-{}", dest.to_string().replace(['.', ':'], "-"));
                s.zone = Some(Ident::parse(&zone).map_err(|e| anyhow::anyhow!("{e}"))?);
                s.ttl = u8::try_from(*ttl).ok();
            }
        } else if let SpeakerUri::Sip {
            user,
            password,
            addr,
            ..
        } = &uri
        {
            s.kind = DriverKind::Sip;
            s.address = format!("sip:{user}@{addr}");
            s.username = Some(user.clone());
            s.password = password.clone().map(Password::new);
        } else if let SpeakerUri::Axis {
            user,
            password,
            addr,
        } = &uri
        {
            s.kind = DriverKind::Axis;
            s.address = addr.to_string();
            s.username = user.clone();
            s.password = password.clone().map(Password::new);
        } else if let SpeakerUri::Cloud { horn_id, .. } = &uri {
            s.kind = DriverKind::Cloud;
            s.address = horn_id.clone();
        } else {
            continue;
        }
        list.push(s);
    }
    Speakers::open(store)?.upsert(&list)?;
    Ok(list.len())
}

/// The demo timetable (TOML, `docs/schedules.md`): morning policy notices
/// on working days, evening ones every day, a fire-safety reminder every
/// Friday, quiet hours in the residential community, and a short demo
/// notice every 15 minutes around the clock, the first about two minutes
/// after `now` (local time).
pub fn demo_timetable(now: jiff::civil::DateTime) -> String {
    let first = (i32::from(now.minute()) + 2).rem_euclid(15);
    let minutes: Vec<String> = (0..4).map(|k| (first + 15 * k).to_string()).collect();
    let hours: Vec<String> = (0..24).map(|h: u8| h.to_string()).collect();
    format!(
        r#"# Written by `tgw demo` into its store (docs/schedules.md); edit it in the dashboard.
timezone = "Asia/Shanghai"

# 青山社区 is residential: no routine broadcast there at night.
[[quiet_hours]]
targets = ["village:qingshan-shequ"]
from = "21:30"
to = "07:00"

[[programme]]
id = "morning-policy"
name = "早间政策广播"
items = [ {{ tts = "各位村民早上好，现在播报今日政策信息：城乡居民医保正在缴费，请按时到村委会或在手机上缴纳。" }} ]
pre_chime = "chime"
priority = "routine"

[[programme]]
id = "evening-policy"
name = "晚间政策广播"
items = [ {{ tts = "各位村民晚上好，现在播报今日政策信息：秋冬季节请勿焚烧秸秆，垃圾请分类投放。" }} ]
pre_chime = "chime"
priority = "routine"

[[programme]]
id = "fire-safety"
name = "每周防火安全提示"
items = [ {{ tts = "天干物燥，小心火烛。进山入林严禁携带火种，发现火情请立即拨打119。" }} ]
repeat = 2
interval = "30s"
priority = "township"

[[programme]]
id = "demo-loop"
name = "演示轮播：安全提示"
items = [ {{ tts = "各位村民请注意：注意用电安全，出门请关好门窗。" }} ]
pre_chime = "chime"
priority = "routine"

[[schedule]]
id = "morning-policy"
programme = "morning-policy"
targets = ["all"]
at = ["07:30"]
days = "workdays"

[[schedule]]
id = "evening-policy"
programme = "evening-policy"
targets = ["all"]
at = ["18:30"]
days = "daily"

[[schedule]]
id = "weekly-fire-safety"
programme = "fire-safety"
targets = ["all"]
rrule = "FREQ=WEEKLY;BYDAY=FR;BYHOUR=16;BYMINUTE=0"

[[schedule]]
id = "demo-loop"
programme = "demo-loop"
targets = ["all"]
rrule = "FREQ=DAILY;BYHOUR={};BYMINUTE={}"
"#,
        hours.join(","),
        minutes.join(",")
    )
}

/// Saves the demo timetable into the store unless one is there already (a
/// demo restarted on the same data directory keeps its edits); returns
/// whether it was saved.
pub fn seed_timetable(
    store: &crate::store::Store,
    now: jiff::civil::DateTime,
) -> anyhow::Result<bool> {
    let records = crate::broadcast::record::Records::open(store)?;
    if records.timetable()?.is_some() {
        return Ok(false);
    }
    let tt = tgw_core::schedule::Timetable::parse(&demo_timetable(now), "Asia/Shanghai")
        .map_err(|e| anyhow::anyhow!("demo timetable: {e}"))?;
    records.save_timetable(&serde_json::to_string(tt.parts())?, "demo")?;
    Ok(true)
}

/// The fewest CIDR blocks covering `first..=last` exactly.
pub fn range_cidrs(first: Ipv4Addr, last: Ipv4Addr) -> Vec<String> {
    let (mut a, b) = (u64::from(u32::from(first)), u64::from(u32::from(last)));
    let mut out = Vec::new();
    while a <= b {
        let mut bits = if a == 0 {
            32
        } else {
            a.trailing_zeros().min(32)
        };
        while bits > 0 && a + (1u64 << bits) - 1 > b {
            bits -= 1;
        }
        out.push(format!("{}/{}", Ipv4Addr::from(a as u32), 32 - bits));
        a += 1u64 << bits;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_cidrs_cover_exactly() {
        let ip = |s: &str| s.parse::<Ipv4Addr>().unwrap();
        assert_eq!(
            range_cidrs(ip("127.0.1.1"), ip("127.0.1.1")),
            ["127.0.1.1/32"]
        );
        assert_eq!(
            range_cidrs(ip("127.0.1.1"), ip("127.0.1.109")),
            [
                "127.0.1.1/32",
                "127.0.1.2/31",
                "127.0.1.4/30",
                "127.0.1.8/29",
                "127.0.1.16/28",
                "127.0.1.32/27",
                "127.0.1.64/27",
                "127.0.1.96/29",
                "127.0.1.104/30",
                "127.0.1.108/31"
            ]
        );
        assert_eq!(
            range_cidrs(ip("10.0.0.0"), ip("10.0.1.255")),
            ["10.0.0.0/23"]
        );
        assert!(range_cidrs(ip("10.0.0.2"), ip("10.0.0.1")).is_empty());
    }

    /// The demo timetable is valid, held in the store once (a second seed
    /// keeps what is there), and its demo loop fires every 15 minutes from
    /// about two minutes after start, around the clock.
    #[test]
    fn demo_timetable_is_valid_and_seeded_once() {
        let now = jiff::civil::date(2026, 12, 4).at(23, 50, 0, 0);
        let text = demo_timetable(now);
        assert!(text.contains("BYMINUTE=7,22,37,52"), "{text}");
        let tt = tgw_core::schedule::Timetable::parse(&text, "Asia/Shanghai").unwrap();
        let ids: Vec<&str> = tt.parts().schedules.iter().map(|s| s.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "morning-policy",
                "evening-policy",
                "weekly-fire-safety",
                "demo-loop"
            ]
        );
        assert_eq!(tt.parts().quiet_hours.len(), 1);
        let dir = tempfile::tempdir().unwrap();
        let store = crate::store::Store::open(dir.path()).unwrap();
        assert!(seed_timetable(&store, now).unwrap());
        assert!(!seed_timetable(&store, now).unwrap());
        let (v, doc) = crate::broadcast::record::Records::open(&store)
            .unwrap()
            .timetable()
            .unwrap()
            .unwrap();
        assert_eq!(v, 1);
        assert!(doc.contains("demo-loop"));
    }
}
