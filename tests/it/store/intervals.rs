//! Interval data: channels, meter-channel-days (arrays round trip whole, status index follows
//! every change), interval batches and a client's open interval batch.

use jiff::civil::{Date, date};
use meterd::model::interval::{
    Channel, DayKey, Direction, IntervalBatch, IntervalBatchContents, IntervalDay, IntervalFlag, IntervalRule, Method,
    Quality,
};
use meterd::model::{BatchStatus, Quantity, ReadStatus};
use meterd::store::DayWindow;
use meterd::store::prelude::*;

use super::*;

fn key(meter: &str, channel: &str, d: Date) -> DayKey {
    DayKey {
        meter_id: meter.into(),
        channel: channel.into(),
        date: d,
    }
}

/// A 15-minute day with a bit of everything: a missing value, an estimate, an edit, an outage,
/// a flag, two sources.
fn day(meter: &str, channel: &str, d: Date, status: ReadStatus) -> IntervalDay {
    let mut day = IntervalDay::empty(key(meter, channel, d), 15, 96, t("2026-03-02T00:00:00Z"));
    let src = day.source_index("nem12 day.csv line 3");
    for i in 0..96 {
        day.values[i] = Some(Quantity::from_micros(250_000 + i as i64));
        day.quality[i] = Quality::Actual;
        day.value_source[i] = Some(src);
    }
    day.values[10] = None;
    day.quality[10] = Quality::Missing;
    day.value_source[10] = None;
    day.quality[11] = Quality::Estimated;
    day.methods[11] = Some(Method::Linear);
    day.quality[12] = Quality::Substituted;
    day.methods[12] = Some(Method::Source(14));
    day.quality[13] = Quality::Edited;
    day.value_source[13] = Some(day.source_index("clerk \"anna\", {x}"));
    day.values[14] = Some(Quantity::from_micros(-5));
    day.outages = vec![10, 11];
    day.status = status;
    day.flags = vec![IntervalFlag {
        rule: IntervalRule::Spike,
        intervals: vec![40],
        expected: Some(Quantity::from_micros(1)),
        limit: Some(Quantity::from_micros(3)),
        actual: Some(Quantity::from_micros(9)),
        detail: Some("highest 9 > 3 × third-highest".into()),
    }];
    day.batch = Some(7);
    day.rev = 3;
    day
}

pub fn interval_days_round_trip_whole(e: &dyn Engine) {
    let s = e.store();
    let d1 = day("m1", "E1", date(2026, 3, 1), ReadStatus::Flagged);
    let mut d2 = day("m1", "E1", date(2026, 3, 2), ReadStatus::Validated);
    d2.batch = None;
    // A spring-forward day in Los Angeles has 92 quarter hours: arrays need not be 96 long.
    d2.values.truncate(92);
    d2.quality.truncate(92);
    d2.methods.truncate(92);
    d2.value_source.truncate(92);
    let mut txn = s.begin_write().unwrap();
    txn.put_channel(&Channel {
        meter_id: "m1".into(),
        channel: "E1".into(),
        unit: "kWh".into(),
        direction: Direction::Delivered,
    })
    .unwrap();
    txn.put_channel(&Channel {
        meter_id: "m1".into(),
        channel: "B1".into(),
        unit: "kWh".into(),
        direction: Direction::Received,
    })
    .unwrap();
    txn.put_interval_days(&[d1.clone(), d2.clone()]).unwrap();
    assert_eq!(
        txn.interval_day(&d1.key()).unwrap().as_ref(),
        Some(&d1),
        "a writer sees its own days"
    );
    txn.commit().unwrap();
    drop(s);
    let s = e.reopen();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.interval_day(&d1.key()).unwrap(), Some(d1.clone()));
    assert_eq!(txn.interval_day(&d2.key()).unwrap(), Some(d2.clone()));
    assert_eq!(txn.interval_day(&key("m1", "E1", date(2026, 3, 3))).unwrap(), None);
    let names: Vec<String> = txn.channels("m1").unwrap().into_iter().map(|c| c.channel).collect();
    assert_eq!(names, ["B1", "E1"], "channels by name");
    assert_eq!(
        txn.channel("m1", "B1").unwrap().map(|c| c.direction),
        Some(Direction::Received)
    );
    assert_eq!(txn.channels("m2").unwrap(), vec![]);
    assert_eq!(txn.count_interval_days().unwrap(), 2);
}

pub fn interval_days_by_meter_are_date_ranges(e: &dyn Engine) {
    let s = e.store();
    let mut txn = s.begin_write().unwrap();
    for (m, c) in [("m1", "E1"), ("m1", "B1"), ("m10", "E1"), ("m", "E1")] {
        txn.put_channel(&Channel {
            meter_id: m.into(),
            channel: c.into(),
            unit: "kWh".into(),
            direction: Direction::Delivered,
        })
        .unwrap();
    }
    let mut days = Vec::new();
    for d in 1..=5 {
        days.push(day(
            "m1",
            "E1",
            date(2026, 1, 30).checked_add(jiff::Span::new().days(d)).unwrap(),
            ReadStatus::Validated,
        ));
        days.push(day("m1", "B1", date(2026, 2, d as i8), ReadStatus::Validated));
        days.push(day("m10", "E1", date(2026, 2, d as i8), ReadStatus::Validated));
        days.push(day("m", "E1", date(2026, 2, d as i8), ReadStatus::Validated));
    }
    txn.put_interval_days(&days).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    let got: Vec<(String, Date)> = txn
        .interval_days("m1", date(2026, 2, 1), date(2026, 2, 4))
        .unwrap()
        .into_iter()
        .map(|d| (d.channel, d.date))
        .collect();
    let want: Vec<(String, Date)> = vec![
        ("B1".into(), date(2026, 2, 1)),
        ("B1".into(), date(2026, 2, 2)),
        ("B1".into(), date(2026, 2, 3)),
        ("E1".into(), date(2026, 2, 1)),
        ("E1".into(), date(2026, 2, 2)),
        ("E1".into(), date(2026, 2, 3)),
    ];
    assert_eq!(
        got, want,
        "by channel then date, `to` excluded, across a month boundary, other meters apart"
    );
    assert_eq!(
        txn.interval_days("m1", date(2026, 2, 4), date(2026, 2, 4)).unwrap(),
        vec![]
    );
    assert_eq!(
        txn.interval_days("m1", date(2026, 2, 4), date(2026, 2, 1)).unwrap(),
        vec![]
    );
    assert_eq!(txn.interval_days("m1", Date::MIN, Date::MAX).unwrap().len(), 10);
}

pub fn interval_days_by_status_follow_every_change(e: &dyn Engine) {
    let s = e.store();
    let mut txn = s.begin_write().unwrap();
    let mut days = vec![
        day("b", "E1", date(2026, 4, 2), ReadStatus::Flagged),
        day("a", "E1", date(2026, 4, 2), ReadStatus::Flagged),
        day("a", "E1", date(2026, 4, 1), ReadStatus::Flagged),
        day("a", "B1", date(2026, 4, 9), ReadStatus::Flagged),
        day("c", "E1", date(2026, 4, 1), ReadStatus::Validated),
    ];
    txn.put_interval_days(&days).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    let flagged = txn.interval_days_with_status(ReadStatus::Flagged, None, 100).unwrap();
    assert_eq!(
        flagged,
        vec![
            key("a", "B1", date(2026, 4, 9)),
            key("a", "E1", date(2026, 4, 1)),
            key("a", "E1", date(2026, 4, 2)),
            key("b", "E1", date(2026, 4, 2)),
        ],
        "key order"
    );
    assert_eq!(
        txn.interval_days_with_status(ReadStatus::Flagged, Some(&flagged[1]), 2)
            .unwrap(),
        flagged[2..4].to_vec(),
        "pages after a key, limited"
    );
    assert_eq!(
        txn.interval_days_with_status(ReadStatus::Flagged, Some(&flagged[3]), 2)
            .unwrap(),
        vec![]
    );
    drop(txn);
    // Accepting a day moves it in the index; nothing stays behind under its old status.
    days[1].status = ReadStatus::Accepted;
    let mut txn = s.begin_write().unwrap();
    txn.put_interval_days(&days[1..2]).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.interval_days_with_status(ReadStatus::Flagged, None, 100)
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        txn.interval_days_with_status(ReadStatus::Accepted, None, 100).unwrap(),
        vec![key("a", "E1", date(2026, 4, 2))]
    );
    assert_eq!(
        txn.interval_days_with_status(ReadStatus::Validated, None, 100).unwrap(),
        vec![key("c", "E1", date(2026, 4, 1))]
    );
    assert_eq!(txn.count_interval_days().unwrap(), 5);
}

pub fn interval_batches_and_open_batch(e: &dyn Engine) {
    let s = e.store();
    let mut txn = s.begin_write().unwrap();
    assert_eq!(txn.lock_open_interval_batch("cis").unwrap(), None);
    let id = txn.next_batch_id().unwrap();
    let d = day("m1", "E1", date(2026, 5, 1), ReadStatus::Batched);
    let batch = IntervalBatch {
        id,
        client: "cis".into(),
        days: vec![d.key()],
        status: BatchStatus::Open,
        created_at: t("2026-05-02T00:00:00Z"),
        acked_at: None,
    };
    txn.put_interval_batch(&batch).unwrap();
    let contents = IntervalBatchContents {
        days: vec![meterd::model::interval::BatchDay {
            day: d.clone(),
            account: "A-1".into(),
            service: Some(Service::Electric),
            unit: "kWh".into(),
            direction: Direction::Delivered,
            correction_of: Some(3),
        }],
    };
    txn.put_interval_batch_contents(id, &contents).unwrap();
    txn.set_open_interval_batch("cis", Some(id)).unwrap();
    txn.commit().unwrap();
    let read_batch_id = {
        let mut txn = s.begin_write().unwrap();
        let n = txn.next_batch_id().unwrap();
        drop(txn);
        n
    };
    assert!(
        read_batch_id > id,
        "interval and read batches share one increasing sequence"
    );
    drop(s);
    let s = e.reopen();
    let mut txn = s.begin_write().unwrap();
    assert_eq!(txn.lock_open_interval_batch("cis").unwrap(), Some(id));
    assert_eq!(txn.lock_open_interval_batch("other").unwrap(), None);
    assert_eq!(txn.open_batch("cis").unwrap(), None, "read batches are apart");
    assert_eq!(txn.interval_batch(id).unwrap(), Some(batch.clone()));
    assert_eq!(txn.interval_batch_contents(id).unwrap(), Some(contents));
    assert_eq!(txn.interval_batch_contents(id + 1000).unwrap(), None);
    let mut acked = batch.clone();
    acked.status = BatchStatus::Acked;
    acked.acked_at = Some(t("2026-05-03T00:00:00Z"));
    txn.put_interval_batch(&acked).unwrap();
    txn.set_open_interval_batch("cis", None).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.interval_batches().unwrap(), vec![acked]);
    drop(txn);
    let mut txn = s.begin_write().unwrap();
    assert_eq!(txn.lock_open_interval_batch("cis").unwrap(), None);
}

pub fn bulk_lookups_answer_in_the_order_asked(e: &dyn Engine) {
    let s = e.store();
    let mut txn = s.begin_write().unwrap();
    let ch = |m: &str, c: &str, d: Direction| Channel {
        meter_id: m.into(),
        channel: c.into(),
        unit: "kWh".into(),
        direction: d,
    };
    // The same key twice in one call: the last wins, as one put after another.
    txn.put_channels(&[
        ch("m2", "E1", Direction::Delivered),
        ch("m1", "B1", Direction::Delivered),
        ch("m1", "B1", Direction::Received),
    ])
    .unwrap();
    let mut days = Vec::new();
    for d in [1, 2, 3, 9] {
        days.push(day("m1", "B1", date(2026, 7, d), ReadStatus::Validated));
        days.push(day("m2", "E1", date(2026, 7, d), ReadStatus::Validated));
    }
    txn.put_interval_days(&days).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    let got = txn
        .channels_by_key(&[("m2", "E1"), ("nope", "E1"), ("m1", "B1")])
        .unwrap();
    assert_eq!(got[0].as_ref().map(|c| c.direction), Some(Direction::Delivered));
    assert_eq!(got[1], None);
    assert_eq!(got[2].as_ref().map(|c| c.direction), Some(Direction::Received));
    assert_eq!(txn.channels_by_key(&[]).unwrap(), vec![]);
    let windows = [
        DayWindow {
            meter_id: "m2",
            channel: "E1",
            from: date(2026, 7, 2),
            to: date(2026, 7, 9),
        },
        DayWindow {
            meter_id: "m1",
            channel: "E1",
            from: Date::MIN,
            to: Date::MAX,
        },
        DayWindow {
            meter_id: "m1",
            channel: "B1",
            from: Date::MIN,
            to: Date::MAX,
        },
        DayWindow {
            meter_id: "m2",
            channel: "E1",
            from: date(2026, 7, 9),
            to: date(2026, 7, 2),
        },
    ];
    let got: Vec<Vec<Date>> = txn
        .day_windows(&windows)
        .unwrap()
        .into_iter()
        .map(|w| w.into_iter().map(|d| d.date).collect())
        .collect();
    assert_eq!(
        got,
        vec![
            vec![date(2026, 7, 2), date(2026, 7, 3)],
            vec![],
            vec![date(2026, 7, 1), date(2026, 7, 2), date(2026, 7, 3), date(2026, 7, 9)],
            vec![],
        ],
        "each window by date, `to` excluded, in the windows' order"
    );
    assert_eq!(
        txn.day_windows(&windows[2..3]).unwrap()[0][0],
        days[0],
        "whole days come back"
    );
}
