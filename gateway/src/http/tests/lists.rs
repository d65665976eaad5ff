//! Lists paged and filtered in SQL: a page is the same slice the full list
//! has, `X-Total-Count` counts every match, filters (village, verdict,
//! text) hold across pages, and an unchanged list answers 304 to its ETag.

use super::*;

/// Adopts `n` more cameras at 127.0.8.x (the first `offline` of them with
/// an offline health row, the rest never polled).
fn seed(fx: &Fx, n: u8, offline: u8) -> Vec<String> {
    let now = time::OffsetDateTime::UNIX_EPOCH;
    (1..=n)
        .map(|i| {
            let up = fx
                .st
                .store
                .record_sighting(&Sighting {
                    endpoint_ref: format!("urn:uuid:list-{i}"),
                    address: Some(Ipv4Addr::new(127, 0, 8, i)),
                    xaddrs: vec![format!("http://127.0.8.{i}/onvif/device_service")],
                    via: "unicast".into(),
                    ..Default::default()
                })
                .unwrap();
            let village = (i % 2 == 0).then_some("dongcun");
            fx.st.store.adopt(&up.id, village, None).unwrap();
            if i <= offline {
                fx.st
                    .store
                    .save_health(&up.id, &tgw_core::health::Health::new(now))
                    .unwrap();
            }
            up.id
        })
        .collect()
}

async fn get(fx: &Fx, path: &str, etag: Option<&str>) -> Resp {
    let mut b = Request::builder().method(Method::GET).uri(path).header(
        header::AUTHORIZATION,
        format!("Bearer {}", fx.tokens[&Role::Viewer]),
    );
    if let Some(t) = etag {
        b = b.header(header::IF_NONE_MATCH, t);
    }
    let r = fx
        .app
        .clone()
        .oneshot(b.body(AxBody::empty()).unwrap())
        .await
        .unwrap();
    let status = r.status();
    let headers = r.headers().clone();
    let bytes = axum::body::to_bytes(r.into_body(), 1 << 22).await.unwrap();
    Resp {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

fn ids_of(r: &Resp) -> Vec<String> {
    let v: serde_json::Value = serde_json::from_str(&r.body).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

fn total(r: &Resp) -> u64 {
    r.headers["x-total-count"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Pages of the camera list are slices of the full list (same order), with
/// the full count; village, verdict and text filters apply before paging.
#[tokio::test]
async fn camera_pages_are_slices_of_the_filtered_list() {
    let fx = fixture();
    seed(&fx, 25, 7);
    let all = get(&fx, "/api/v1/cameras", None).await;
    assert_eq!(all.status, StatusCode::OK, "{}", all.body);
    let all_ids = ids_of(&all);
    assert_eq!((all_ids.len(), total(&all)), (26, 26));
    let p2 = get(&fx, "/api/v1/cameras?page=2&per_page=10", None).await;
    assert_eq!(ids_of(&p2), all_ids[10..20].to_vec());
    assert_eq!(total(&p2), 26);
    let p3 = get(&fx, "/api/v1/cameras?page=3&per_page=10", None).await;
    assert_eq!(ids_of(&p3), all_ids[20..].to_vec());
    let past = get(&fx, "/api/v1/cameras?page=9&per_page=10", None).await;
    assert!(ids_of(&past).is_empty());
    assert_eq!(total(&past), 26);
    // Full rows: the fields the dashboard reads.
    let v: serde_json::Value = serde_json::from_str(&p2.body).unwrap();
    for k in [
        "id",
        "name",
        "address",
        "village",
        "grid",
        "manufacturer",
        "model",
        "health",
    ] {
        assert!(v[0].get(k).is_some(), "{k} missing: {}", p2.body);
    }

    let off = get(&fx, "/api/v1/cameras?verdict=offline&per_page=5", None).await;
    assert_eq!((ids_of(&off).len(), total(&off)), (5, 7));
    assert!(off.body.contains("\"verdict\":\"offline\""));
    let unk = get(&fx, "/api/v1/cameras?verdict=unknown", None).await;
    assert_eq!(total(&unk), 19);
    assert!(!unk.body.contains("\"verdict\""));
    // fx.cam and the 12 even-numbered seeds are in dongcun.
    let dc = get(
        &fx,
        "/api/v1/cameras?village=dongcun&page=2&per_page=5",
        None,
    )
    .await;
    assert_eq!((ids_of(&dc).len(), total(&dc)), (5, 13));
    let q = get(&fx, "/api/v1/cameras?q=127.0.8.1", None).await;
    // 127.0.8.1 and 127.0.8.10-19.
    assert_eq!(total(&q), 11);
    let none = get(&fx, "/api/v1/cameras?vendor=nobody", None).await;
    assert_eq!((ids_of(&none).len(), total(&none)), (0, 0));
}

/// The device list and the inbox page in SQL too, keeping every field
/// (the inventory of returned rows included).
#[tokio::test]
async fn device_and_inbox_pages_keep_their_shape() {
    let fx = fixture();
    let all = get(&fx, "/api/v1/devices", None).await;
    let all_ids = ids_of(&all);
    assert_eq!(total(&all), 3);
    let p = get(&fx, "/api/v1/devices?page=2&per_page=1", None).await;
    assert_eq!(ids_of(&p), vec![all_ids[1].clone()]);
    let v: serde_json::Value = serde_json::from_str(&p.body).unwrap();
    for k in [
        "inventory",
        "xaddrs",
        "has_credentials",
        "probe_error_kind",
        "first_seen",
    ] {
        assert!(v[0].get(k).is_some(), "{k} missing: {}", p.body);
    }
    let adopted = get(&fx, "/api/v1/devices?state=adopted&kind=camera", None).await;
    assert_eq!(ids_of(&adopted), vec![fx.cam.clone()]);
    let v: serde_json::Value = serde_json::from_str(&adopted.body).unwrap();
    assert_eq!(v[0]["has_credentials"], true);
    let inbox = get(&fx, "/api/v1/inbox?per_page=1&page=2", None).await;
    assert_eq!(total(&inbox), 2);
    assert_eq!(ids_of(&inbox).len(), 1);
    assert_ne!(ids_of(&inbox)[0], fx.cam);
}

/// An unchanged list answers 304 (no body) to its ETag; a change gives 200
/// with a new ETag.
#[tokio::test]
async fn unchanged_lists_answer_304_to_their_etag() {
    let fx = fixture();
    for path in [
        "/api/v1/cameras?per_page=50",
        "/api/v1/devices",
        "/api/v1/inbox",
    ] {
        let r = get(&fx, path, None).await;
        let tag = r.headers[header::ETAG].to_str().unwrap().to_string();
        let again = get(&fx, path, Some(&tag)).await;
        assert_eq!(again.status, StatusCode::NOT_MODIFIED, "{path}");
        assert!(again.body.is_empty());
        assert_eq!(again.headers[header::ETAG].to_str().unwrap(), tag);
        let other = get(&fx, path, Some("\"something-else\"")).await;
        assert_eq!(other.status, StatusCode::OK, "{path}");
    }
    let r = get(&fx, "/api/v1/cameras", None).await;
    let tag = r.headers[header::ETAG].to_str().unwrap().to_string();
    seed(&fx, 1, 1);
    let changed = get(&fx, "/api/v1/cameras", Some(&tag)).await;
    assert_eq!(changed.status, StatusCode::OK);
    assert_ne!(changed.headers[header::ETAG].to_str().unwrap(), tag);
}

/// With `Accept-Encoding: gzip` the list comes gzipped (and smaller); the
/// live event stream is never compressed; without the header nothing is.
#[tokio::test]
async fn lists_are_gzipped_when_asked_and_events_never() {
    let fx = fixture();
    seed(&fx, 40, 10);
    let send = |path: &'static str, gzip: bool| {
        let app = fx.app.clone();
        let tok = fx.tokens[&Role::Viewer].clone();
        async move {
            let mut b = Request::builder()
                .uri(path)
                .header(header::AUTHORIZATION, format!("Bearer {tok}"));
            if gzip {
                b = b.header(header::ACCEPT_ENCODING, "gzip");
            }
            app.oneshot(b.body(AxBody::empty()).unwrap()).await.unwrap()
        }
    };
    let plain = send("/api/v1/cameras", false).await;
    assert!(plain.headers().get(header::CONTENT_ENCODING).is_none());
    let plain = axum::body::to_bytes(plain.into_body(), 1 << 22)
        .await
        .unwrap();
    let gz = send("/api/v1/cameras", true).await;
    assert_eq!(gz.headers()[header::CONTENT_ENCODING], "gzip");
    assert!(gz.headers().get("x-total-count").is_some());
    let gz = axum::body::to_bytes(gz.into_body(), 1 << 22).await.unwrap();
    assert_eq!(&gz[..2], &[0x1f, 0x8b]);
    assert!(
        gz.len() * 4 < plain.len(),
        "{} vs {}",
        gz.len(),
        plain.len()
    );
    let ev = send("/api/v1/events", true).await;
    assert_eq!(ev.status(), StatusCode::OK);
    assert!(ev.headers().get(header::CONTENT_ENCODING).is_none());
}

/// One camera's page carries that camera's health (read by its id, not
/// picked out of every camera's), and none for a camera never polled.
#[tokio::test]
async fn one_camera_has_its_own_health() {
    let fx = fixture();
    let ids = seed(&fx, 3, 1);
    let polled = get(&fx, &format!("/api/v1/cameras/{}", ids[0]), None).await;
    assert_eq!(polled.status, StatusCode::OK, "{}", polled.body);
    let v: serde_json::Value = serde_json::from_str(&polled.body).unwrap();
    assert_eq!(v["device"]["id"], ids[0].as_str());
    assert_eq!(v["health"]["verdict"], "offline", "{v}");
    let never = get(&fx, &format!("/api/v1/cameras/{}", ids[1]), None).await;
    let v: serde_json::Value = serde_json::from_str(&never.body).unwrap();
    assert_eq!(v["device"]["id"], ids[1].as_str());
    assert!(v["health"].is_null(), "never polled: {v}");
    let gone = get(&fx, "/api/v1/cameras/no-such-camera", None).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND, "{}", gone.body);
}
