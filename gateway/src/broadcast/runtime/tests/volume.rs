//! Volumes: each horn's own, the broadcast's, and the emergency volume
//! forced on every horn.

use super::*;

/// Each horn plays at its own volume unless the broadcast sets one; an
/// emergency forces its volume on every horn.
#[tokio::test(start_paused = true)]
async fn horn_volumes_and_the_forced_emergency_volume() {
    let w = world();
    let sp = Speakers::open(&w.store).unwrap();
    let mut h1 = sp.get("h1").unwrap().unwrap();
    h1.volume = Some(40);
    sp.upsert(&[NewSpeaker {
        id: crate::config::Ident::parse("h1").unwrap(),
        name: None,
        kind: DriverKind::Rtp,
        address: h1.address.clone(),
        village: h1.village.clone(),
        grid: None,
        zone: None,
        codec: Codec::Pcmu,
        volume: Some(40),
        ttl: None,
        username: None,
        password: None,
    }])
    .unwrap();
    let shutdown = CancellationToken::new();
    let (b, task) = start_runtime(&w, shutdown.clone());
    let chime = |priority, volume| Spec {
        id: None,
        origin: "operator:test".into(),
        title: "t".into(),
        priority,
        targets: vec![Target::Village("v1".into())],
        recipe: Recipe {
            pre: None,
            items: vec![crate::broadcast::render::Part::Chime],
            post: None,
            repeat: 1,
            interval: Duration::ZERO,
            volume,
        },
        start_at: None,
        latest_start: None,
        on_preempt: OnPreempt::Drop,
    };
    let full = crate::broadcast::render::chime()
        .iter()
        .map(|x| i32::from(*x).abs())
        .max()
        .unwrap();
    let peaks = |w: &World| {
        let log = w.log.lock().unwrap();
        let p = |h: &str| {
            log.iter()
                .rev()
                .find(|x| x.horn == h)
                .map(|x| x.peak)
                .unwrap()
        };
        (p("h1"), p("h2"))
    };
    until(&w, "09:30:00").await; // out of the night's quiet hours
    b.submit(chime(Priority::Township, None)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (p1, p2) = peaks(&w);
    assert_eq!(
        p2, full,
        "h2 has no volume of its own: the default (100 here)"
    );
    let g40 = crate::broadcast::render::volume_gain(40);
    assert!(
        (f64::from(p1) - f64::from(full) * g40).abs() <= 1.0,
        "h1 at its own 40: {p1} vs {full}"
    );
    b.submit(chime(Priority::Township, Some(70))).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (p1, p2) = peaks(&w);
    assert_eq!(p1, p2, "the broadcast's volume on both");
    b.submit(chime(Priority::Emergency, None)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (p1, p2) = peaks(&w);
    assert_eq!(
        (p1, p2),
        (full, full),
        "emergency_volume (100) forced on both"
    );
    shutdown.cancel();
    task.await.unwrap();
}
