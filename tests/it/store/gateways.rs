//! Gateways: de-duplication keys, gateway state, interval reads, tamper state, outbox.

use meterd::model::{GatewayState, IntervalRead, OutboxEntry};
use meterd::store::prelude::*;

use super::*;

pub fn seen_keys_are_durable_and_expire_per_namespace(e: &dyn Engine) {
    let s = e.store();
    let mut txn = s.begin_write().unwrap();
    assert!(txn.mark_seen("scm", b"123:456", t("2025-01-01T00:00:00Z")).unwrap());
    assert!(!txn.mark_seen("scm", b"123:456", t("2025-01-01T00:01:00Z")).unwrap());
    assert!(txn.mark_seen("scm", b"999", t("2025-01-02T00:00:00Z")).unwrap());
    assert!(txn.mark_seen("idm", b"123:456", t("2025-01-01T00:00:00Z")).unwrap());
    txn.commit().unwrap();
    drop(s);
    let s = e.reopen();
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.seen("scm", b"123:456").unwrap(),
        Some(t("2025-01-01T00:00:00Z")),
        "the first sighting"
    );
    assert_eq!(txn.seen("scm", b"nope").unwrap(), None);
    drop(txn);
    let mut txn = s.begin_write().unwrap();
    assert_eq!(txn.forget_seen_before("scm", t("2025-01-01T12:00:00Z")).unwrap(), 1);
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.seen("scm", b"123:456").unwrap(), None);
    assert!(txn.seen("scm", b"999").unwrap().is_some());
    assert!(
        txn.seen("idm", b"123:456").unwrap().is_some(),
        "other namespaces untouched"
    );
    drop(txn);
    // Heard again after it expired: a new first sighting, which expires in its turn.
    let mut txn = s.begin_write().unwrap();
    assert!(txn.mark_seen("scm", b"123:456", t("2025-01-03T00:00:00Z")).unwrap());
    assert_eq!(
        txn.forget_seen_before("scm", t("2025-01-02T12:00:00Z")).unwrap(),
        1,
        "only 999"
    );
    assert_eq!(
        txn.forget_seen_before("scm", t("2025-01-02T00:00:00Z")).unwrap(),
        0,
        "before is exclusive"
    );
    assert_eq!(txn.forget_seen_before("scm", t("2025-01-04T00:00:00Z")).unwrap(), 1);
    assert_eq!(txn.seen("scm", b"123:456").unwrap(), None);
    txn.commit().unwrap();
}

pub fn gateways_are_stored_by_id(e: &dyn Engine) {
    let s = e.store();
    let mut b = GatewayState::new("gw-b");
    b.messages = 7;
    b.last_message_at = Some(t("2025-06-01T00:00:00Z"));
    let a = GatewayState::new("gw-a");
    let mut txn = s.begin_write().unwrap();
    txn.put_gateway(&b).unwrap();
    txn.put_gateway(&a).unwrap();
    // Health by reason and in windows, kept whole by every engine.
    b.count(t("2025-06-01T00:00:10Z"), None, 600);
    b.count(t("2025-06-01T00:00:20Z"), Some(meterd::model::Undecodable::Key), 600);
    b.count(t("2025-06-01T00:11:00Z"), Some(meterd::model::Undecodable::Crc), 600);
    assert!(b.previous_window.is_some() && !b.undecodable_by.is_empty());
    txn.put_gateway(&b).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.gateways().unwrap(), [a, b.clone()]);
    assert_eq!(txn.gateway("gw-b").unwrap(), Some(b));
    assert_eq!(txn.gateway("gw-c").unwrap(), None);
}

pub fn interval_reads_are_end_exclusive_per_meter(e: &dyn Engine) {
    let s = e.store();
    let iv = |end: &str, number: u8, consumption: u64| IntervalRead {
        end: t(end),
        number,
        consumption,
    };
    let mut txn = s.begin_write().unwrap();
    txn.insert_interval_read("M1", &iv("2025-01-01T01:00:00Z", 2, 20))
        .unwrap();
    txn.insert_interval_read("M1", &iv("2025-01-01T00:00:00Z", 1, 10))
        .unwrap();
    txn.insert_interval_read("M1", &iv("2025-01-01T02:00:00Z", 3, 30))
        .unwrap();
    txn.insert_interval_read("M2", &iv("2025-01-01T01:00:00Z", 9, 90))
        .unwrap();
    // Same end: replaced.
    txn.insert_interval_read("M1", &iv("2025-01-01T02:00:00Z", 3, 31))
        .unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.interval_reads("M1", t("2025-01-01T00:00:00Z"), t("2025-01-01T02:00:00Z"))
            .unwrap(),
        [iv("2025-01-01T00:00:00Z", 1, 10), iv("2025-01-01T01:00:00Z", 2, 20)],
        "from inclusive, to exclusive, oldest first, one meter"
    );
    assert_eq!(
        txn.interval_reads("M1", t("2025-01-01T02:00:00Z"), t("2025-01-02T00:00:00Z"))
            .unwrap(),
        [iv("2025-01-01T02:00:00Z", 3, 31)]
    );
    assert_eq!(txn.count_interval_reads().unwrap(), 4);
    assert!(
        txn.interval_reads("M3", t("2025-01-01T00:00:00Z"), t("2025-01-02T00:00:00Z"))
            .unwrap()
            .is_empty()
    );
}

pub fn tamper_state_is_replaced(e: &dyn Engine) {
    let s = e.store();
    let mut txn = s.begin_write().unwrap();
    assert_eq!(txn.tamper_state("ep1").unwrap(), None);
    txn.set_tamper_state("ep1", t("2025-01-01T00:00:00Z"), 3).unwrap();
    txn.set_tamper_state("ep1", t("2025-01-02T00:00:00Z"), u64::MAX)
        .unwrap();
    txn.set_tamper_state("ep2", t("2025-01-03T00:00:00Z"), 0).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.tamper_state("ep1").unwrap(),
        Some((t("2025-01-02T00:00:00Z"), u64::MAX))
    );
    assert_eq!(txn.tamper_state("ep2").unwrap(), Some((t("2025-01-03T00:00:00Z"), 0)));
}

pub fn outbox_ids_increase_and_pages_are_limited(e: &dyn Engine) {
    let s = e.store();
    let entry = |n: u8| OutboxEntry {
        topic: format!("meters/ack/{n}"),
        payload: vec![n],
    };
    let mut txn = s.begin_write().unwrap();
    let ids: Vec<u64> = (0..4).map(|n| txn.push_outbox(&entry(n)).unwrap()).collect();
    txn.commit().unwrap();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    let mut txn = s.begin_write().unwrap();
    assert!(txn.remove_outbox(ids[1]).unwrap());
    assert!(!txn.remove_outbox(ids[1]).unwrap(), "gone already");
    assert_eq!(txn.outbox_len().unwrap(), 3);
    txn.commit().unwrap();
    drop(s);
    let s = e.reopen();
    let mut txn = s.begin_write().unwrap();
    let next = txn.push_outbox(&entry(9)).unwrap();
    assert!(next > ids[3], "never reused across reopen: {next} after {ids:?}");
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.outbox(0, 2).unwrap(),
        [(ids[0], entry(0)), (ids[2], entry(2))],
        "oldest first, at most the limit"
    );
    assert_eq!(
        txn.outbox(ids[2], 10).unwrap(),
        [(ids[3], entry(3)), (next, entry(9))],
        "strictly after"
    );
    assert_eq!(txn.outbox_len().unwrap(), 4);
}

pub fn many_seen_keys_at_once_as_one_after_the_other(e: &dyn Engine) {
    let s = e.store();
    let at = t("2025-01-01T00:00:00Z");
    let mut txn = s.begin_write().unwrap();
    assert!(txn.mark_seen("ns", b"old", at).unwrap());
    let keys: [&[u8]; 5] = [b"b", b"old", b"a", b"b", b"c"];
    assert_eq!(
        txn.mark_seen_all("ns", &keys, at).unwrap(),
        [true, false, true, false, true]
    );
    assert_eq!(txn.mark_seen_all("ns", &[], at).unwrap(), Vec::<bool>::new());
    assert_eq!(txn.mark_seen_all("other", &[b"a"], at).unwrap(), [true]);
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.seen("ns", b"c").unwrap(), Some(at));
    assert_eq!(txn.seen("ns", b"d").unwrap(), None);
}
