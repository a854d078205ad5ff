//! Cradles: route assignments, load history, watermarks, skips.

use meterd::model::{RouteLoad, RouteSkip};
use meterd::store::prelude::*;

use super::*;

fn load(route: &str, at: &str) -> RouteLoad {
    RouteLoad {
        route: route.into(),
        serial: "HH-1".into(),
        loaded_at: t(at),
        meters: 12,
        cleared_at: None,
    }
}

pub fn route_assignments_and_loads(e: &dyn Engine) {
    let s = e.store();
    let mut txn = s.begin_write().unwrap();
    txn.assign_route("R2", Some("HH-2")).unwrap();
    txn.assign_route("R1", Some("HH-1")).unwrap();
    txn.assign_route("R3", Some("HH-3")).unwrap();
    txn.assign_route("R3", None).unwrap();
    txn.assign_route("R1", Some("HH-9")).unwrap();
    txn.put_route_load(&load("R2", "2025-01-01T00:00:00Z")).unwrap();
    txn.put_route_load(&load("R1", "2025-02-01T00:00:00Z")).unwrap();
    txn.put_route_load(&load("R1", "2025-01-01T00:00:00Z")).unwrap();
    txn.put_route_load(&load("R1", "2025-03-01T00:00:00Z")).unwrap();
    let mut cleared = load("R1", "2025-02-01T00:00:00Z");
    cleared.cleared_at = Some(t("2025-02-02T00:00:00Z"));
    txn.put_route_load(&cleared).unwrap();
    txn.remove_route_load(&load("R1", "2025-03-01T00:00:00Z")).unwrap();
    txn.commit().unwrap();
    drop(s);
    let s = e.reopen();
    let txn = s.begin_read().unwrap();
    assert_eq!(
        txn.route_assignments().unwrap(),
        [
            ("R1".to_owned(), "HH-9".to_owned()),
            ("R2".to_owned(), "HH-2".to_owned())
        ]
    );
    assert_eq!(
        txn.route_loads().unwrap(),
        [
            load("R1", "2025-01-01T00:00:00Z"),
            cleared,
            load("R2", "2025-01-01T00:00:00Z")
        ],
        "by route then load time, replaced by key, removed"
    );
}

pub fn watermarks_and_skips(e: &dyn Engine) {
    let s = e.store();
    let skip = |meter: &str, seq: u32| RouteSkip {
        route: "R1".into(),
        meter_id: meter.into(),
        at: t("2025-01-01T10:00:00Z"),
        code: Some("DOG".into()),
        trouble_codes: vec![],
        serial: "HH-1".into(),
        seq,
        received_at: t("2025-01-01T18:00:00Z"),
    };
    let mut txn = s.begin_write().unwrap();
    assert_eq!(txn.cradle_watermark("HH-1").unwrap(), None);
    txn.put_cradle_watermark("HH-1", 40).unwrap();
    txn.put_cradle_watermark("HH-2", 7).unwrap();
    txn.put_route_skip(&skip("M2", 5)).unwrap();
    txn.put_route_skip(&skip("M1", 6)).unwrap();
    txn.put_route_skip(&skip("M1", 6)).unwrap(); // idempotent
    let mut other = skip("M3", 7);
    other.route = "R2".into();
    txn.put_route_skip(&other).unwrap();
    txn.commit().unwrap();
    let txn = s.begin_read().unwrap();
    assert_eq!(txn.cradle_watermark("HH-1").unwrap(), Some(40));
    assert_eq!(txn.cradle_watermark("HH-2").unwrap(), Some(7));
    assert_eq!(
        txn.route_skips("R1").unwrap(),
        [skip("M1", 6), skip("M2", 5)],
        "by meter, once"
    );
    assert_eq!(txn.route_skips("R2").unwrap(), [other]);
    assert!(txn.route_skips("R9").unwrap().is_empty());
}
