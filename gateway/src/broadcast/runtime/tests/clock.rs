//! The wall clock set forward or back under the scheduler: missed
//! occurrences follow their policy and nothing plays twice.

use super::*;

/// A wall clock that follows tokio's paused clock plus an offset the test
/// can change: the system clock being set forward or back.
struct JumpClock {
    base: TokioClock,
    offset: std::sync::atomic::AtomicI64,
}

impl Clock for JumpClock {
    fn now_ms(&self) -> Ms {
        self.base.now_ms() + self.offset.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The clock jumps forward over a schedule (skip: not played; play-within:
/// played at once), then back over it: nothing plays twice.
#[tokio::test(start_paused = true)]
async fn clock_jumps_forward_and_back() {
    let w = world();
    let r = Records::open(&w.store).unwrap();
    let tone = w.timetable.programme("morning").unwrap().items[0].clone();
    let asset = match tone {
        tgw_core::schedule::Item::Asset(a) => a,
        tgw_core::schedule::Item::Tts(_) => unreachable!(),
    };
    let tt = Timetable::parse(
        &format!(
            r#"
[[programme]]
id = "p"
items = [ {{ asset = "{asset}" }} ]

[[schedule]]
id = "skip-1000"
programme = "p"
targets = ["all"]
at = ["10:00"]

[[schedule]]
id = "late-1001"
programme = "p"
targets = ["all"]
at = ["10:01"]
missed = "play-within:1h"
"#
        ),
        "Asia/Shanghai",
    )
    .unwrap();
    let clock = Arc::new(JumpClock {
        base: TokioClock::starting_at(at("09:59:00")),
        offset: std::sync::atomic::AtomicI64::new(0),
    });
    let shutdown = CancellationToken::new();
    let (_b, task) = start(
        Parts {
            records: Records::open(&w.store).unwrap(),
            publisher: std::sync::Arc::new(crate::broadcast::runtime::NoReports),
            live: LiveHub::default(),
            speakers: Speakers::open(&w.store).unwrap(),
            assets: w.assets.clone(),
            timetable: tt,
            settings: Settings {
                inline_render: true,
                ..Settings::default()
            },
            clock: clock.clone(),
            player: Arc::new(Recorder {
                clock: w.clock.clone(),
                log: w.log.clone(),
            }),
            warnings: None,
            keys: crate::broadcast::signed::KeySet::from_config(&[]).unwrap(),
        },
        shutdown.clone(),
    );
    tokio::time::sleep(Duration::from_secs(40)).await; // 09:59:40
    clock
        .offset
        .store(30 * 60_000, std::sync::atomic::Ordering::SeqCst); // → 10:29:40
    tokio::time::sleep(Duration::from_secs(60)).await;
    let list = r.list(100).unwrap();
    assert!(
        list.iter().all(|b| b.origin != "schedule:skip-1000"),
        "skipped after the jump: {list:?}"
    );
    let late: Vec<_> = list
        .iter()
        .filter(|b| b.origin == "schedule:late-1001")
        .collect();
    assert_eq!(late.len(), 1, "played late once: {list:?}");
    // Back to 09:59:50: 10:00 and 10:01 come round again; nothing replays.
    clock
        .offset
        .store(-50_000, std::sync::atomic::Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(5 * 60)).await;
    let list = r.list(100).unwrap();
    assert!(
        list.iter().all(|b| b.origin != "schedule:skip-1000"),
        "{list:?}"
    );
    assert_eq!(
        list.iter()
            .filter(|b| b.origin == "schedule:late-1001")
            .count(),
        1,
        "{list:?}"
    );
    assert!(
        r.fired(
            "skip-1000",
            &jiff::Timestamp::from_millisecond(at("10:00:00"))
                .unwrap()
                .to_string()
        )
        .unwrap()
    );
    shutdown.cancel();
    task.await.unwrap();
}
