//! Tests of the speaker inventory, its CSV import and adoption.

use super::*;
use crate::config::{Config, Ident};
use crate::store::{Store, StoreError};

fn store() -> (tempfile::TempDir, Speakers) {
    let dir = tempfile::tempdir().unwrap();
    let s = Store::open(dir.path()).unwrap();
    let cfg = Config::parse(include_str!("../../../config/gateway.example.toml"), "x").unwrap();
    s.sync_township(&cfg.township).unwrap();
    let sp = Speakers::open(&s).unwrap();
    (dir, sp)
}

const EXAMPLE: &str = include_str!("../../../config/speakers.example.csv");

/// The example CSV imports; passwords are sealed, not listed, and
/// re-import updates instead of duplicating.
#[test]
fn example_csv_imports_and_reimports() {
    let (dir, sp) = store();
    let r = sp.import_csv(EXAMPLE, "speakers.example.csv").unwrap();
    assert!(r.created >= 5 && r.updated == 0 && r.zones >= 1, "{r:?}");
    let list = sp.list().unwrap();
    assert_eq!(list.len(), r.created);
    let kinds: std::collections::BTreeSet<_> = list.iter().map(|s| s.kind).collect();
    assert_eq!(kinds.len(), 5, "every driver kind in the example");
    let m = list
        .iter()
        .find(|s| s.kind == DriverKind::RtpMulticast)
        .unwrap();
    assert!(m.multicast.unwrap().group.ip().is_multicast());
    let json = serde_json::to_string(&list).unwrap();
    assert!(!json.contains("horn-secret"), "{json}");
    let sip = list.iter().find(|s| s.kind == DriverKind::Sip).unwrap();
    assert!(sip.has_password);
    assert_eq!(
        sp.login_for(&sip.id).unwrap().unwrap().password.expose(),
        "horn-secret"
    );
    // The sealed password is not in the database file in clear.
    drop(sp);
    let db = std::fs::read(dir.path().join("tgw.db")).unwrap();
    let wal = std::fs::read(dir.path().join("tgw.db-wal")).unwrap_or_default();
    assert!(
        !db.windows(11)
            .chain(wal.windows(11))
            .any(|w| w == b"horn-secret")
    );
    let s = Store::open(dir.path()).unwrap();
    let sp = Speakers::open(&s).unwrap();
    let r2 = sp.import_csv(EXAMPLE, "x").unwrap();
    assert_eq!((r2.created, r2.updated), (0, r.created));
    // An empty password keeps the stored one.
    let csv = format!(
        "id,kind,address,username\n{},sip,{},admin\n",
        sip.id, sip.address
    );
    sp.import_csv(&csv, "x").unwrap();
    assert_eq!(
        sp.login_for(&sip.id).unwrap().unwrap().password.expose(),
        "horn-secret"
    );
    assert!(sp.remove(&sip.id).unwrap());
    assert!(sp.get(&sip.id).unwrap().is_none());
}

/// Errors name the line and the column; all of them are reported and
/// nothing is imported.
#[test]
fn bad_rows_name_line_and_column() {
    let (_d, sp) = store();
    let csv = "id,kind,address,village,grid,zone,volume,ttl,username,password\n\
               h1,rtp,10.0.0.1:5004,,,,,,,\n\
               # a comment\n\
               H 2,rtp,10.0.0.2:5004,,,,,,,\n\
               h3,rtp,10.0.0.3,,,,,,,\n\
               h4,horn,10.0.0.4:1,,,,,,,\n\
               h5,rtp,10.0.0.5:1,nowhere,,,,,,\n\
               h6,rtp,10.0.0.6:1,,,,101,,,\n\
               h7,rtp-multicast,239.1.1.1:5004,,,,,2,,\n\
               h8,rtp-multicast,239.1.1.1:5004,,,z1,,2,,\n\
               h9,rtp-multicast,239.1.1.2:5004,,,z1,,2,,\n\
               h1,rtp,10.0.0.9:5004,,,,,,,\n\
               h10,rtp,10.0.0.10:5004,,,,,,,pw\n\
               h11,sip,10.0.0.11,,,,,,,\n\
               h12,rtp,224.0.0.1:5004,,,,,,,\n";
    let e = sp.import_csv(csv, "s.csv").unwrap_err().to_string();
    for want in [
        "s.csv: line 4, column `id`",
        "s.csv: line 5, column `address`",
        "line 6, column `kind`: `horn` is not a driver kind",
        "line 7, column `village`: no village `nowhere`",
        "line 8, column `volume`",
        "line 9, column `zone`: an rtp-multicast speaker needs a zone",
        "line 11, column `address`: zone `z1` is 239.1.1.1:5004 ttl 2 on line 10",
        "line 12, column `id`: `h1` is already used on line 2",
        "line 13, column `password`: a password needs a username",
        "line 14, column `address`",
        "line 15, column `address`",
    ] {
        assert!(e.contains(want), "missing `{want}` in:\n{e}");
    }
    assert!(sp.list().unwrap().is_empty(), "all-or-nothing");
}

/// Adopting a discovered speaker creates its inventory entry from the
/// sighting's driver; adopting it again (moved, new zone) updates the
/// entry and keeps what the CSV set (volume, codec, login). Unknown
/// places and bad override addresses change nothing.
#[test]
fn adopting_a_discovered_speaker_creates_then_updates() {
    let (_d, sp) = store();
    let st = &sp.store;
    let id = st
        .record_speaker_sighting(
            "mdns:H._rtp-horn._udp.local",
            Some([10, 21, 3, 60].into()),
            None,
            Some("H"),
            "mdns",
            Some(("rtp", "10.21.3.60:5004")),
        )
        .unwrap()
        .id;
    let a = AdoptSpeaker {
        village: Some("dongcun".into()),
        ..AdoptSpeaker::default()
    };
    let s = sp.adopt_discovered(&id, &a).unwrap();
    assert_eq!(
        (s.kind, s.address.as_str()),
        (DriverKind::Rtp, "10.21.3.60:5004")
    );
    assert_eq!(
        (s.village.as_deref(), s.grid.as_deref(), s.zone.as_deref()),
        (Some("dongcun"), None, None)
    );
    assert_eq!(s.name.as_deref(), Some("H"));
    // The CSV sets volume and codec; a second adoption moves it.
    sp.import_csv(
        &format!("id,kind,address,codec,volume\n{id},rtp,10.21.3.60:5004,pcma,70\n"),
        "x",
    )
    .unwrap();
    let grid = st
        .villages()
        .unwrap()
        .into_iter()
        .find(|v| v.code == "dongcun")
        .unwrap()
        .grids[0]
        .0
        .clone();
    let again = AdoptSpeaker {
        grid: Some(grid.clone()),
        zone: Some(Ident::parse("square").unwrap()),
        ..AdoptSpeaker::default()
    };
    let s = sp.adopt_discovered(&id, &again).unwrap();
    assert_eq!((s.codec, s.volume), (Codec::Pcma, Some(70)));
    assert_eq!(s.grid.as_deref(), Some(grid.as_str()));
    assert_eq!(s.village.as_deref(), Some("dongcun"), "implied by the grid");
    assert_eq!(s.zone.as_deref(), Some("square"));
    assert_eq!(sp.list().unwrap().len(), 1);
    let bad = AdoptSpeaker {
        village: Some("nowhere".into()),
        ..AdoptSpeaker::default()
    };
    assert!(matches!(
        sp.adopt_discovered(&id, &bad),
        Err(StoreError::NotFound {
            what: "village",
            ..
        })
    ));
    let bad = AdoptSpeaker {
        address: Some("239.1.1.1:5004".into()),
        ..AdoptSpeaker::default()
    };
    let e = sp.adopt_discovered(&id, &bad).unwrap_err().to_string();
    assert!(e.contains("not a unicast address"), "{e}");
    assert_eq!(sp.get(&id).unwrap().unwrap().address, "10.21.3.60:5004");
    assert!(matches!(
        sp.adopt_discovered("spk-none", &a),
        Err(StoreError::NotFound { .. })
    ));
}

#[test]
fn header_problems() {
    let t = Township::default();
    let e = parse_csv("", &t).unwrap_err();
    assert!(e[0].msg.contains("no header"));
    let e = parse_csv("id,kind,adress\n", &t).unwrap_err();
    assert!(e.iter().any(|e| e.column.as_deref() == Some("adress")));
    assert!(e.iter().any(|e| e.column.as_deref() == Some("address")));
    let e = parse_csv("id,kind,address\nh1,rtp\n", &t).unwrap_err();
    assert_eq!(e[0].to_string(), "line 2: 2 fields, the header has 3");
}

#[test]
fn grid_must_belong_to_its_village_and_implies_it() {
    let mut t = Township {
        villages: vec!["a".into(), "b".into()],
        ..Default::default()
    };
    t.grids.insert("a-1".into(), "a".into());
    let ok = parse_csv("id,kind,address,grid\nh,rtp,10.0.0.1:9,a-1\n", &t).unwrap();
    assert_eq!(ok[0].village.as_deref(), Some("a"));
    let e = parse_csv("id,kind,address,village,grid\nh,rtp,10.0.0.1:9,b,a-1\n", &t).unwrap_err();
    assert!(e[0].to_string().contains("belongs to village `a`"), "{e:?}");
}

#[test]
fn csv_quoting() {
    let r = csv_records("a,\"b,\"\"c\"\"\",d\r\n\"x\ny\",z\n\n# c\nlast").unwrap();
    assert_eq!(r[0], (1, vec!["a".into(), "b,\"c\"".into(), "d".into()]));
    assert_eq!(r[1], (2, vec!["x\ny".into(), "z".into()]));
    assert_eq!(r[2], (6, vec!["last".into()]));
    assert!(csv_records("a,\"open").is_err());
    assert!(csv_records("a,b\"c").is_err());
}

#[test]
fn addresses_per_kind() {
    use DriverKind::*;
    assert!(check_address(Rtp, "10.1.2.3:5004").is_ok());
    assert!(check_address(Rtp, "10.1.2.3:0").is_err());
    assert!(check_address(Rtp, "239.1.1.1:5004").is_err());
    assert!(check_address(RtpMulticast, "10.1.2.3:5004").is_err());
    assert!(check_address(Sip, "sip:horn@10.1.2.3:5060").is_ok());
    assert!(check_address(Sip, "sip:@10.1.2.3").is_err());
    assert!(check_address(Sip, "http://x").is_err());
    assert!(check_address(Axis, "10.1.2.3").is_ok());
    assert!(check_address(Axis, "https://10.1.2.3:8443").is_ok());
    assert!(check_address(Axis, "http://root:pw@10.1.2.3").is_err());
    assert!(check_address(Axis, "ftp://10.1.2.3").is_err());
    assert!(check_address(Cloud, "4g-horn-0012").is_ok());
    assert!(check_address(Cloud, "a/+/#").is_err());
    assert!(check_address(Cloud, "a b").is_err());
}

/// Arbitrary bytes never panic the CSV parser.
#[test]
fn csv_mutations_do_not_panic() {
    let t = Township::default();
    let base = EXAMPLE.as_bytes();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..500 {
        let mut b = base.to_vec();
        for _ in 0..4 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let i = (x as usize) % b.len();
            b[i] = (x >> 32) as u8;
        }
        let _ = parse_csv(&String::from_utf8_lossy(&b), &t);
    }
}
