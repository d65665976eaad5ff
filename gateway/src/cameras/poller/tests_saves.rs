//! Coalesced health saves ([`super::saves`]): a second's saves are one
//! commit, the latest of a camera wins, a failed flush keeps its entries
//! for the next, a camera no longer adopted is not written back, the
//! time written is the check's, and stopping the poller writes what is
//! buffered.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use super::saves::HealthSaves;
use super::tests::{Rig, cfg};
use crate::base::clock::{Clock, ManualClock};
use crate::base::metrics::Metrics;
use crate::cameras::fake::{self, Script};
use crate::store::Store;
use tgw_core::health::Health;

/// A store (on a hand-driven clock) with cameras `1..=n` adopted.
fn store_with(n: u8) -> (tempfile::TempDir, Store, Arc<ManualClock>, Vec<String>) {
    let dir = tempfile::tempdir().expect("tempdir");
    let clock = Arc::new(ManualClock::at(1_784_077_200_000));
    let store = Store::open_with_clock(dir.path(), clock.clone()).expect("store");
    let ids = (1..=n).map(|i| fake::adopted(&store, i)).collect();
    (dir, store, clock, ids)
}

/// A health told apart from others by its clock offset.
fn marked(clock: &ManualClock, offset_ms: i64) -> Health {
    let mut h = Health::new(clock.now_utc());
    h.clock_offset_ms = Some(offset_ms);
    h
}

fn offset(store: &Store, id: &str) -> Option<i64> {
    store
        .health(id)
        .expect("read")
        .and_then(|h| h.clock_offset_ms)
}

/// Makes every write of `health_state` fail as a full disk would, until
/// [`heal`].
fn break_health_writes(store: &Store) {
    store
        .with_conn(|c| {
            c.execute_batch(
                "CREATE TEMP TRIGGER full_insert BEFORE INSERT ON health_state
                   BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;
                 CREATE TEMP TRIGGER full_update BEFORE UPDATE ON health_state
                   BEGIN SELECT RAISE(ABORT, 'database or disk is full'); END;",
            )?;
            Ok(())
        })
        .expect("triggers");
}

fn heal(store: &Store) {
    store
        .with_conn(|c| {
            c.execute_batch("DROP TRIGGER full_insert; DROP TRIGGER full_update;")?;
            Ok(())
        })
        .expect("drop triggers");
}

/// Commits made on the store's connection from now on.
fn count_commits(store: &Store) -> Arc<AtomicUsize> {
    let n = Arc::new(AtomicUsize::new(0));
    let n2 = n.clone();
    store
        .with_conn(|c| {
            c.commit_hook(Some(move || {
                n2.fetch_add(1, Ordering::Relaxed);
                false
            }))?;
            Ok(())
        })
        .expect("hook");
    n
}

/// A flush that fails (the disk full) loses nothing: every entry waits
/// for the next flush, which writes it; a camera saved again meanwhile
/// gets its newer health, not the one put back.
#[test]
fn a_failed_flush_keeps_its_entries_for_the_next() {
    let (_d, store, clock, ids) = store_with(3);
    let saves = HealthSaves::new(store.clone());
    for (i, id) in ids.iter().enumerate() {
        saves.save(id, &marked(&clock, i as i64 + 1));
    }
    break_health_writes(&store);
    let err = saves.flush().expect_err("the disk is full");
    assert!(err.to_string().contains("full"), "{err}");
    assert_eq!(saves.len(), 3, "nothing lost");
    assert_eq!(offset(&store, &ids[0]), None, "nothing written");
    saves.save(&ids[0], &marked(&clock, 100));
    heal(&store);
    assert_eq!(saves.flush().expect("flush"), 3);
    assert!(saves.is_empty());
    assert_eq!(offset(&store, &ids[0]), Some(100), "the newer save");
    assert_eq!(offset(&store, &ids[1]), Some(2));
    assert_eq!(offset(&store, &ids[2]), Some(3));
}

/// A camera ignored while its health is buffered keeps the health it had;
/// one deleted (its row merged into another) gets no health row back; and
/// neither fails the batch for the others or stays buffered.
#[test]
fn a_camera_no_longer_adopted_is_not_written_back() {
    let (_d, store, clock, ids) = store_with(3);
    for id in &ids {
        store.save_health(id, &marked(&clock, 1)).expect("save");
    }
    let saves = HealthSaves::new(store.clone());
    for id in &ids {
        saves.save(id, &marked(&clock, 2));
    }
    store.ignore(&ids[0]).expect("ignore");
    store
        .with_conn(|c| {
            c.execute("DELETE FROM device WHERE id = ?1", [&ids[1]])?;
            Ok(())
        })
        .expect("delete");
    assert_eq!(store.health(&ids[1]).expect("read"), None, "cascaded away");
    assert_eq!(saves.flush().expect("flush"), 1, "only the adopted one");
    assert!(saves.is_empty(), "not retried");
    assert_eq!(offset(&store, &ids[0]), Some(1), "ignored: unchanged");
    assert_eq!(
        store.health(&ids[1]).expect("read"),
        None,
        "not resurrected"
    );
    assert_eq!(offset(&store, &ids[2]), Some(2));
}

/// Many saves of many cameras are one commit; nothing buffered, no commit.
#[test]
fn a_batch_of_saves_is_one_commit() {
    let (_d, store, clock, ids) = store_with(5);
    let saves = HealthSaves::new(store.clone());
    let commits = count_commits(&store);
    assert_eq!(saves.flush().expect("flush"), 0);
    assert_eq!(commits.load(Ordering::Relaxed), 0, "no empty transaction");
    for round in 0..3 {
        for id in &ids {
            saves.save(id, &marked(&clock, round));
        }
    }
    assert_eq!(commits.load(Ordering::Relaxed), 0, "buffered, not written");
    assert_eq!(saves.flush().expect("flush"), 5);
    assert_eq!(commits.load(Ordering::Relaxed), 1, "one transaction");
    for id in &ids {
        assert_eq!(offset(&store, id), Some(2));
    }
}

/// Two saves of a camera before a flush: the second is written, stamped
/// with the time it was saved (the check), not the flush's; until the
/// flush, `latest` reads it from the buffer.
#[test]
fn the_latest_save_wins_and_keeps_its_time() {
    let (_d, store, clock, ids) = store_with(1);
    let id = &ids[0];
    store.save_health(id, &marked(&clock, 1)).expect("save");
    let saves = HealthSaves::new(store.clone());
    saves.save(id, &marked(&clock, 2));
    clock.advance(2_000);
    saves.save(id, &marked(&clock, 3));
    assert_eq!(saves.len(), 1, "one entry per camera");
    let latest = saves.latest(id).expect("read").expect("some");
    assert_eq!(latest.clock_offset_ms, Some(3), "read from the buffer");
    assert_eq!(offset(&store, id), Some(1), "not yet written");
    clock.advance(5_000);
    assert_eq!(saves.flush().expect("flush"), 1, "one row");
    assert_eq!(offset(&store, id), Some(3));
    let at: String = store
        .with_conn(|c| {
            Ok(c.query_row(
                "SELECT updated_at FROM health_state WHERE device_id = ?1",
                [id],
                |r| r.get(0),
            )?)
        })
        .expect("updated_at");
    assert_eq!(at, "2026-07-15T01:00:02Z", "the second check's time");
}

/// Stopping the poller writes what is buffered: nothing of the last
/// second is lost on a clean stop.
#[tokio::test(start_paused = true)]
async fn stopping_the_poller_writes_what_is_buffered() {
    let rig = Rig::start_seeded(
        cfg(30, 300, 600),
        vec![Script::default()],
        Arc::new(Metrics::new()),
        |s, n| {
            fake::adopted(s, n);
        },
    );
    let id = rig.store.adopted_camera_ids().expect("ids")[0].0.clone();
    rig.until("a check", 31 * super::tests::SEC, |r| {
        !r.sink.of(1).is_empty()
    })
    .await;
    let mut h = rig.sink.of(1).pop().expect("state");
    h.clock_offset_ms = Some(424_242);
    let saves = rig.poller.health_saves();
    saves.save(&id, &h);
    let store = rig.store.clone();
    // No time passes: only the stop can write it.
    rig.stop().await;
    assert!(saves.is_empty());
    assert_eq!(offset(&store, &id), Some(424_242));
}

/// A change (verdict or rung) is written at once, with whatever else is
/// buffered, before the sinks hear of it; an older buffered health of the
/// same camera never lands over it.
#[test]
fn a_change_is_written_at_once() {
    let (_d, store, clock, ids) = store_with(2);
    let saves = HealthSaves::new(store.clone());
    let commits = count_commits(&store);
    saves.save(&ids[0], &marked(&clock, 1));
    saves.save(&ids[1], &marked(&clock, 5));
    saves.save_changed(&ids[0], &marked(&clock, 2));
    assert_eq!(commits.load(Ordering::Relaxed), 1, "written at once");
    assert!(saves.is_empty());
    assert_eq!(
        offset(&store, &ids[0]),
        Some(2),
        "the change, not the older save"
    );
    assert_eq!(
        offset(&store, &ids[1]),
        Some(5),
        "the rest of the buffer with it"
    );
    assert_eq!(saves.flush().expect("flush"), 0, "nothing left over");
    assert_eq!(offset(&store, &ids[0]), Some(2));
}
