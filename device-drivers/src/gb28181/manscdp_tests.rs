use super::*;

/// Garbage, an empty body, an oversized body and a DTD are refused with a reason.
#[test]
fn refuses_bad_bodies() {
    assert!(matches!(parse(b""), Err(ManscdpError::Size(0))));
    assert!(matches!(
        parse(&vec![b'<'; MAX_BODY + 1]),
        Err(ManscdpError::Size(_))
    ));
    assert!(matches!(parse(b"not xml"), Err(ManscdpError::Xml(_))));
    let dtd = b"<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY a \"b\">]><Query><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>1</DeviceID></Query>";
    assert!(matches!(parse(dtd), Err(ManscdpError::Xml(_))));
    let root = b"<Foo><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>1</DeviceID></Foo>";
    assert_eq!(parse(root), Err(ManscdpError::Root("Foo".into())));
    let sn = b"<Query><CmdType>Catalog</CmdType><SN>x1</SN><DeviceID>1</DeviceID></Query>";
    assert_eq!(parse(sn), Err(ManscdpError::Sn("x1".into())));
    let no_id = b"<Query><CmdType>Catalog</CmdType><SN>1</SN></Query>";
    assert_eq!(
        parse(no_id),
        Err(ManscdpError::Missing {
            cmd: "Catalog".into(),
            field: "DeviceID"
        })
    );
}

/// A platform's Catalog query (GB2312 declared, CRLF).
#[test]
fn catalog_query() {
    let m = parse(include_bytes!("testdata/wvp_catalog_query.xml")).unwrap();
    assert_eq!(m.root, Root::Query);
    assert_eq!(m.cmd_type, "Catalog");
    assert_eq!(m.sn, 17430);
    assert_eq!(m.device_id, "34020000002000000099");
}

/// GB2312 Chinese names decode; items keep every field; 10-digit CivilCode.
#[test]
fn catalog_response_gb2312() {
    let m = parse(include_bytes!("testdata/hikvision_nvr_catalog_gb2312.xml")).unwrap();
    assert_eq!(m.root, Root::Response);
    assert_eq!(m.field("SumNum"), Some("2"));
    assert_eq!(m.items.len(), 2);
    let get = |i: usize, k: &str| {
        m.items[i]
            .iter()
            .find(|(a, _)| a == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get(0, "Name").as_deref(), Some("村口东侧"));
    assert_eq!(get(1, "Status").as_deref(), Some("OFF"));
    assert_eq!(get(1, "Latitude").as_deref(), Some("31.861190"));
}

/// Keepalive with standalone and an empty Info; Alarm with nested Info.
#[test]
fn keepalive_and_alarm() {
    let k = parse(include_bytes!("testdata/dahua_keepalive.xml")).unwrap();
    assert_eq!(
        (k.root, k.cmd_type.as_str(), k.field("Status")),
        (Root::Notify, "Keepalive", Some("OK"))
    );
    let a = parse(include_bytes!("testdata/alarm_notify_utf8.xml")).unwrap();
    assert_eq!(a.field("AlarmDescription"), Some("视频丢失"));
    assert_eq!(a.field("AlarmMethod"), Some("5"));
}

/// GBK bytes without a declaration fall back to GBK.
#[test]
fn undeclared_gbk() {
    let m = parse(include_bytes!("testdata/undeclared_gbk_query.xml")).unwrap();
    assert_eq!(m.field("Name"), Some("乡镇平台"));
}

fn camera(n: usize, online: bool) -> CatalogItem {
    CatalogItem {
        device_id: format!("3402000000131{n:07}"),
        kind: ItemKind::Camera,
        name: format!("摄像机{n}"),
        parent_id: Some("34020000002160000001".into()),
        civil_code: "34020000".into(),
        business_group_id: Some("34020000002150000001".into()),
        manufacturer: Some("Hikvision".into()),
        model: Some("DS-2CD".into()),
        address: Some("村委会 & 广场".into()),
        online,
        longitude: Some(117.1),
        latitude: None,
        event: None,
    }
}

/// Pages: every page says the total; items split by per_page; names
/// survive GB2312 round trip; coordinates only when both are known.
#[test]
fn catalog_pages_round_trip() {
    let items: Vec<_> = (1..=5).map(|n| camera(n, n != 3)).collect();
    let pages = catalog_pages(9, "34020000002000000099", &items, 2, Charset::Gb2312);
    assert_eq!(pages.len(), 3);
    let mut all = Vec::new();
    for p in &pages {
        assert!(std::str::from_utf8(p).is_err(), "GB2312 bytes, not UTF-8");
        let m = parse(p).unwrap();
        assert_eq!((m.sn, m.field("SumNum")), (9, Some("5")));
        all.extend(m.items);
    }
    assert_eq!(all.len(), 5);
    let v = |i: usize, k: &str| all[i].iter().find(|(a, _)| a == k).map(|(_, v)| v.clone());
    assert_eq!(v(0, "Name").as_deref(), Some("摄像机1"));
    assert_eq!(v(2, "Status").as_deref(), Some("OFF"));
    assert_eq!(v(0, "Address").as_deref(), Some("村委会 & 广场"));
    assert_eq!(v(0, "Longitude"), None);
    let empty = catalog_pages(1, "x", &[], 10, Charset::Utf8);
    assert_eq!(empty.len(), 1);
    assert_eq!(parse(&empty[0]).unwrap().field("SumNum"), Some("0"));
}

/// DeviceInfo, DeviceStatus, Alarm and catalog NOTIFY read back.
#[test]
fn builders_read_back() {
    let info = DeviceInfo {
        name: "乡镇网关",
        manufacturer: "tgw",
        model: "gateway",
        firmware: "1.0",
        channels: 7,
    };
    let m = parse(&device_info(3, "id", &info, Charset::Gb2312)).unwrap();
    assert_eq!(
        (m.field("DeviceName"), m.field("Channel")),
        (Some("乡镇网关"), Some("7"))
    );
    let m = parse(&device_status(
        4,
        "id",
        true,
        "2026-01-01T00:00:00",
        Charset::Utf8,
    ))
    .unwrap();
    assert_eq!(m.field("Online"), Some("ONLINE"));
    let a = Alarm {
        channel_id: "c",
        priority: 1,
        method: 2,
        alarm_type: 1,
        time: "t",
        description: "离线",
    };
    let m = parse(&alarm_notify(5, &a, Charset::Gb2312)).unwrap();
    assert_eq!(
        (m.cmd_type.as_str(), m.field("AlarmDescription")),
        ("Alarm", Some("离线"))
    );
    let mut c = camera(1, false);
    c.event = Some("OFF");
    let m = parse(&catalog_notify(6, "id", &[c], Charset::Gb2312)).unwrap();
    assert_eq!(m.root, Root::Notify);
    assert!(m.items[0].contains(&("Event".into(), "OFF".into())));
}

/// A DeviceList of more than MAX_ITEMS items keeps MAX_ITEMS.
#[test]
fn item_cap() {
    let mut s = String::from(
        "<Response><CmdType>Catalog</CmdType><SN>1</SN><DeviceID>1</DeviceID><DeviceList>",
    );
    for _ in 0..MAX_ITEMS + 5 {
        s.push_str("<Item><A>1</A></Item>");
    }
    s.push_str("</DeviceList></Response>");
    assert_eq!(parse(s.as_bytes()).unwrap().items.len(), MAX_ITEMS);
}
