//! Wireless M-Bus: compact-frame layouts and held compact frames, durable across a reopen.

use meterd::store::HeldTelegram;
use meterd::store::prelude::*;
use meterd_protocols::wmbus::compact::FormatKey;

use super::*;

fn held(meter: &str, signature: u16, payload: &[u8]) -> HeldTelegram {
    HeldTelegram {
        topic: "meters/gw1/raw".into(),
        locator: "meters/gw1/raw line 2".into(),
        gateway: "gw1".into(),
        payload: payload.to_vec(),
        received_at: t("2025-03-01T10:00:00Z"),
        meter: meter.into(),
        manufacturer: 0x2C2D,
        version: 0x1B,
        device_type: 0x16,
        signature,
    }
}

pub fn layouts_and_held_telegrams_survive_reopen(e: &dyn Engine) {
    let kam = FormatKey {
        manufacturer: 0x2C2D,
        version: 0x1B,
        device_type: 0x16,
        signature: 0xBEEF,
    };
    let other = FormatKey {
        signature: 0x0001,
        ..kam
    };
    let s = e.store();
    {
        let txn = s.begin_read().unwrap();
        assert_eq!(txn.wmbus_layout(&kam).unwrap(), None);
        assert_eq!(txn.count_held_telegrams().unwrap(), 0);
    }
    let mut txn = s.begin_write().unwrap();
    txn.put_wmbus_layout(&kam, &[0x04, 0x13, 0x02, 0x3B]).unwrap();
    txn.put_wmbus_layout(&other, &[0x0C, 0x13]).unwrap();
    // The same key again replaces (the same signature is the same layout).
    txn.put_wmbus_layout(&kam, &[0x04, 0x13, 0x02, 0x3B]).unwrap();
    let a = txn.hold_telegram(&held("76348799", 0x1234, b"2A44\x00binary")).unwrap();
    let b = txn.hold_telegram(&held("76348800", 0x1235, b"2B44")).unwrap();
    assert!(b > a, "ids increase");
    txn.commit().unwrap();
    // Not committed: gone.
    let mut txn = s.begin_write().unwrap();
    txn.hold_telegram(&held("1", 1, b"x")).unwrap();
    drop(txn);
    drop(s);
    let s = e.reopen();
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.wmbus_layout(&kam).unwrap().as_deref(),
        Some(&[0x04, 0x13, 0x02, 0x3B][..])
    );
    assert_eq!(
        txn.wmbus_layouts().unwrap(),
        [(other, vec![0x0C, 0x13]), (kam, vec![0x04, 0x13, 0x02, 0x3B])]
    );
    assert_eq!(txn.count_held_telegrams().unwrap(), 2);
    let list = txn.held_telegrams().unwrap();
    assert_eq!(
        list,
        [
            (a, held("76348799", 0x1234, b"2A44\x00binary")),
            (b, held("76348800", 0x1235, b"2B44"))
        ]
    );
    assert_eq!(list[0].1.format_key().signature, 0x1234);
    drop(txn);
    let mut txn = s.begin_write().unwrap();
    assert!(txn.release_held_telegram(a).unwrap());
    assert!(!txn.release_held_telegram(a).unwrap(), "released once");
    assert!(!txn.release_held_telegram(999_999).unwrap());
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.held_telegrams()
            .unwrap()
            .into_iter()
            .map(|(id, _)| id)
            .collect::<Vec<_>>(),
        [b]
    );
}
