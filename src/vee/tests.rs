//! One test per rule at least, with the numbers, plus the boundaries.

use jiff::{SignedDuration, Timestamp};

use super::*;
use crate::model::{Meter, MeterChange, MeterStatus, Origin, Quantity, Read, ReadStatus, ReadType, Rule, Service};

fn q(s: &str) -> Quantity {
    Quantity::parse(s).unwrap()
}

fn day(d: i64) -> Timestamp {
    "2025-01-01T08:00:00Z".parse::<Timestamp>().unwrap() + SignedDuration::from_hours(24 * d)
}

fn meter(dials: u8, decimals: u8) -> Meter {
    Meter {
        meter_id: "M1".into(),
        account: "A1".into(),
        route: "R1".into(),
        sequence: 1,
        service: Service::Water,
        unit: "gal".into(),
        dials,
        decimals,
        multiplier: q("1"),
        status: MeterStatus::Active,
        address: "1 Main St".into(),
        notes: String::new(),
    }
}

/// History from (day, value) pairs: consumption of each period = value difference.
fn history(points: &[(i64, &str)]) -> Vec<HistoryRead> {
    let mut out: Vec<HistoryRead> = Vec::new();
    for &(d, v) in points {
        let value = q(v);
        let consumption = out.last().map(|p| value.checked_sub(p.value).unwrap());
        out.push(HistoryRead {
            id: 0,
            read_at: day(d),
            value,
            consumption,
            status: ReadStatus::Validated,
            excluded: false,
        });
    }
    out
}

fn read(d: i64, value: &str, codes: &[&str]) -> Read {
    Read {
        meter_id: "M1".into(),
        read_at: day(d),
        value: q(value),
        raw: value.into(),
        read_type: ReadType::Manual,
        codes: codes.iter().map(|c| c.to_string()).collect(),
        reader: None,
        origin: Origin::file_line("t.csv", 2),
    }
}

fn run(m: &Meter, hist: &[HistoryRead], r: &Read) -> Outcome {
    validate(
        &MeterHistory {
            meter: Some(m),
            history: hist,
            same_time: &[],
            ..MeterHistory::default()
        },
        r,
        &VeeConfig::default(),
    )
}

fn rules(o: &Outcome) -> Vec<Rule> {
    o.flags.iter().map(|f| f.rule).collect()
}

fn flag(o: &Outcome, rule: Rule) -> &Flag {
    o.flags
        .iter()
        .find(|f| f.rule == rule)
        .unwrap_or_else(|| panic!("no {rule} flag in {:?}", o.flags))
}

/// Three reads 30 days apart using 300 per period: ADU 10/day, so E = 300 for 30 days,
/// H = max(1.8 × 300, 300 + 10) = 540, low limit 0.4 × 300 = 120.
fn steady() -> Vec<HistoryRead> {
    history(&[(0, "1000"), (30, "1300"), (60, "1600")])
}

#[test]
fn rollover_8_dials_is_445_not_444() {
    let o = run(&meter(8, 0), &history(&[(0, "99999678")]), &read(30, "00000123", &[]));
    assert_eq!(rules(&o), vec![Rule::Rollover]);
    assert_eq!(o.consumption, Some(q("445")));
    let f = flag(&o, Rule::Rollover);
    assert_eq!(f.actual, Some(q("445")));
    assert_eq!(f.modulus, Some(q("100000000")));
    // Too little history for H: plausible when W ≤ M/10.
    assert_eq!(f.limit, Some(q("10000000")));
    assert_eq!(o.status, ReadStatus::Validated, "a plausible rollover is not held");
}

#[test]
fn rollover_with_decimals_wraps_at_10_to_the_dials_minus_decimals() {
    // 8 dials, 3 decimals: M = 100000.
    let o = run(&meter(8, 3), &history(&[(0, "99999.5")]), &read(30, "0.3", &[]));
    assert_eq!(o.consumption, Some(q("0.8")));
    assert_eq!(flag(&o, Rule::Rollover).modulus, Some(q("100000")));
}

#[test]
fn rollover_is_judged_against_the_high_limit_when_history_allows() {
    // Registers near the top of 8 dials, ADU 10/day: E = 300, H = 540.
    let hist = history(&[(0, "99999000"), (30, "99999300"), (60, "99999600")]);
    // W = (100 − 99999600) mod 10^8 = 500 ≤ 540: rollover.
    let o = run(&meter(8, 0), &hist, &read(90, "100", &[]));
    assert_eq!(rules(&o), vec![Rule::Rollover]);
    assert_eq!(o.consumption, Some(q("500")));
    assert_eq!(flag(&o, Rule::Rollover).limit, Some(q("540")));
    // W = 540 exactly is still plausible; 541 is not.
    assert_eq!(
        rules(&run(&meter(8, 0), &hist, &read(90, "140", &[]))),
        vec![Rule::Rollover]
    );
    let o = run(&meter(8, 0), &hist, &read(90, "141", &[]));
    assert_eq!(rules(&o), vec![Rule::NegativeUsage]);
    let f = flag(&o, Rule::NegativeUsage);
    assert_eq!(f.actual, Some(q("-99999459")));
    assert_eq!(f.expected, Some(q("300")));
    assert_eq!(f.limit, Some(q("540")));
    assert_eq!(o.status, ReadStatus::Flagged);
}

#[test]
fn negative_usage_when_not_a_plausible_rollover() {
    let o = run(&meter(8, 0), &history(&[(0, "5000")]), &read(30, "4990", &[]));
    assert_eq!(rules(&o), vec![Rule::NegativeUsage]);
    assert_eq!(o.consumption, Some(q("-10")));
    assert_eq!(flag(&o, Rule::NegativeUsage).actual, Some(q("-10")));
    assert_eq!(o.status, ReadStatus::Flagged);
    // Boundary without history: W = M/10 exactly is a rollover, one more is not.
    let m = meter(4, 0); // M = 10000, M/10 = 1000
    assert_eq!(
        run(&m, &history(&[(0, "9500")]), &read(30, "500", &[])).consumption,
        Some(q("1000"))
    );
    assert_eq!(
        rules(&run(&m, &history(&[(0, "9500")]), &read(30, "501", &[]))),
        vec![Rule::NegativeUsage]
    );
}

#[test]
fn dial_overflow_at_the_modulus() {
    let m = meter(4, 0);
    let o = run(&m, &[], &read(0, "10000", &[]));
    assert_eq!(rules(&o), vec![Rule::DialOverflow]);
    let f = flag(&o, Rule::DialOverflow);
    assert_eq!((f.limit, f.actual), (Some(q("10000")), Some(q("10000"))));
    assert!(f.detail.as_deref().unwrap().contains("at most 9999"));
    assert_eq!(o.consumption, None);
    assert_eq!(o.status, ReadStatus::Flagged);
    assert!(run(&m, &[], &read(0, "9999", &[])).flags.is_empty());
    // 8 dials with 3 decimals show up to 99999.999.
    assert!(run(&meter(8, 3), &[], &read(0, "99999.999", &[])).flags.is_empty());
    assert_eq!(
        rules(&run(&meter(8, 3), &[], &read(0, "100000", &[]))),
        vec![Rule::DialOverflow]
    );
}

#[test]
fn high_usage_above_h() {
    let o = run(&meter(8, 0), &steady(), &read(90, "2141", &[]));
    assert_eq!(rules(&o), vec![Rule::HighUsage]);
    let f = flag(&o, Rule::HighUsage);
    assert_eq!(
        (f.expected, f.limit, f.actual),
        (Some(q("300")), Some(q("540")), Some(q("541")))
    );
    assert_eq!(o.status, ReadStatus::Flagged);
    // C = H exactly is not high.
    assert!(run(&meter(8, 0), &steady(), &read(90, "2140", &[])).flags.is_empty());
}

#[test]
fn high_limit_uses_min_high_delta_for_small_expectations() {
    // ADU 1/30 per day: E = 1, 1.8 × E = 1.8 < E + 10 = 11.
    let hist = history(&[(0, "100"), (30, "101"), (60, "102")]);
    assert!(run(&meter(8, 0), &hist, &read(90, "113", &[])).flags.is_empty());
    let o = run(&meter(8, 0), &hist, &read(90, "114", &[]));
    assert_eq!(flag(&o, Rule::HighUsage).limit, Some(q("11")));
}

#[test]
fn expected_scales_with_days_since_previous_read() {
    // 45 days after the previous read: E = 10 × 45 = 450, H = 810.
    let o = run(&meter(8, 0), &steady(), &read(105, "2411", &[]));
    let f = flag(&o, Rule::HighUsage);
    assert_eq!((f.expected, f.limit), (Some(q("450")), Some(q("810"))));
}

#[test]
fn low_usage_below_low_factor() {
    let o = run(&meter(8, 0), &steady(), &read(90, "1719", &[]));
    assert_eq!(rules(&o), vec![Rule::LowUsage]);
    let f = flag(&o, Rule::LowUsage);
    assert_eq!(
        (f.expected, f.limit, f.actual),
        (Some(q("300")), Some(q("120")), Some(q("119")))
    );
    assert!(run(&meter(8, 0), &steady(), &read(90, "1720", &[])).flags.is_empty());
}

#[test]
fn high_and_low_need_two_earlier_reads() {
    let one = history(&[(0, "1000")]);
    assert!(run(&meter(8, 0), &one, &read(30, "900000", &[])).flags.is_empty());
    assert!(expectation(&one, day(30), &ServiceFactors::default()).is_none());
}

#[test]
fn zero_usage_on_active_only() {
    let o = run(&meter(8, 0), &steady(), &read(90, "1600", &[]));
    assert_eq!(rules(&o), vec![Rule::ZeroUsage], "zero is zero_usage, not low_usage");
    assert_eq!(flag(&o, Rule::ZeroUsage).expected, Some(q("300")));
    let mut off = meter(8, 0);
    off.status = MeterStatus::Inactive;
    assert!(run(&off, &steady(), &read(90, "1600", &[])).flags.is_empty());
}

#[test]
fn usage_on_inactive_meter() {
    let mut off = meter(8, 0);
    off.status = MeterStatus::Inactive;
    let o = run(&off, &history(&[(0, "1000")]), &read(30, "1005", &[]));
    assert_eq!(rules(&o), vec![Rule::UsageOnInactive]);
    let f = flag(&o, Rule::UsageOnInactive);
    assert_eq!((f.limit, f.actual), (Some(q("0")), Some(q("5"))));
}

#[test]
fn exact_same_usage_as_previous_period() {
    // Previous period used 300; this one too.
    let o = run(&meter(8, 0), &steady(), &read(90, "1900", &[]));
    assert_eq!(rules(&o), vec![Rule::ExactSameUsage]);
    assert_eq!(flag(&o, Rule::ExactSameUsage).expected, Some(q("300")));
    assert_eq!(o.status, ReadStatus::Flagged);
    assert!(run(&meter(8, 0), &steady(), &read(90, "1901", &[])).flags.is_empty());
}

#[test]
fn duplicate_with_another_value() {
    let m = meter(8, 0);
    let o = validate(
        &MeterHistory {
            meter: Some(&m),
            history: &history(&[(0, "1000")]),
            same_time: &[q("1100")],
            ..MeterHistory::default()
        },
        &read(30, "1101", &[]),
        &VeeConfig::default(),
    );
    assert_eq!(rules(&o), vec![Rule::Duplicate]);
    let f = flag(&o, Rule::Duplicate);
    assert_eq!((f.expected, f.actual), (Some(q("1100")), Some(q("1101"))));
    assert_eq!(o.status, ReadStatus::Flagged);
}

#[test]
fn endpoint_codes_raise_their_flags() {
    let o = run(
        &meter(8, 0),
        &history(&[(0, "1000")]),
        &read(30, "1010", &["TC-12", "TAMPER", "leak", "reverse_flow"]),
    );
    assert_eq!(rules(&o), vec![Rule::Tamper, Rule::Leak, Rule::ReverseFlow]);
    assert_eq!(o.status, ReadStatus::Flagged);
    assert!(
        run(&meter(8, 0), &history(&[(0, "1000")]), &read(30, "1010", &["SC-04"]))
            .flags
            .is_empty()
    );
}

#[test]
fn unknown_meter_is_kept_and_held() {
    let o = validate(
        &MeterHistory {
            meter: None,
            history: &[],
            same_time: &[],
            ..MeterHistory::default()
        },
        &read(0, "5", &["leak"]),
        &VeeConfig::default(),
    );
    assert_eq!(rules(&o), vec![Rule::UnknownMeter, Rule::Leak]);
    assert_eq!(o.status, ReadStatus::Flagged);
    assert_eq!(o.consumption, None);
}

#[test]
fn adu_uses_only_trusted_periods_of_the_last_365_days() {
    // A huge old period (day 0 → 10) and a 1/day period ending day 400. At day 430 only the
    // latter is inside the window: E = 30, H = max(54, 40) = 54, low = 12.
    let hist = history(&[(0, "0"), (10, "10000"), (400, "10390")]);
    let e = expectation(&hist, day(430), &ServiceFactors::default()).unwrap();
    assert_eq!((e.expected, e.high, e.low), (q("30"), q("54"), q("12")));
    assert!(run(&meter(8, 0), &hist, &read(430, "10440", &[])).flags.is_empty());

    // A flagged (unreviewed) period does not count: only the 10/day periods do.
    let mut hist = history(&[(0, "1000"), (30, "1300"), (60, "1600"), (90, "9600")]);
    hist[3].status = ReadStatus::Flagged;
    let e = expectation(&hist, day(120), &ServiceFactors::default()).unwrap();
    assert_eq!(e.expected, q("300"));
}

#[test]
fn per_service_factors_apply() {
    let mut cfg = VeeConfig::default();
    cfg.water.high_factor = q("3");
    // E = 300 → H = 900 with the water factor of 3.
    let o = validate(
        &MeterHistory {
            meter: Some(&meter(8, 0)),
            history: &steady(),
            same_time: &[],
            ..MeterHistory::default()
        },
        &read(90, "2200", &[]),
        &cfg,
    );
    assert!(o.flags.is_empty());
    let mut gas = meter(8, 0);
    gas.service = Service::Gas;
    let o = validate(
        &MeterHistory {
            meter: Some(&gas),
            history: &steady(),
            same_time: &[],
            ..MeterHistory::default()
        },
        &read(90, "2200", &[]),
        &cfg,
    );
    assert_eq!(flag(&o, Rule::HighUsage).limit, Some(q("540")));
}

#[test]
fn first_read_has_no_consumption() {
    let o = run(&meter(8, 0), &[], &read(0, "1234", &[]));
    assert!(o.flags.is_empty());
    assert_eq!((o.consumption, o.status), (None, ReadStatus::Validated));
}

// --- VEE completed: meter_change, estimate_limit, spike, per-read-type factors ---

fn change(d: i64, install: &str, removal: Option<&str>) -> MeterChange {
    MeterChange {
        meter_id: "M1".into(),
        at: day(d),
        old_serial: "A100".into(),
        new_serial: "B200".into(),
        old_dials: 8,
        new_dials: 6,
        install_read: q(install),
        removal_read: removal.map(q),
    }
}

#[test]
fn meter_change_counts_from_the_install_read_not_the_old_meter() {
    let changes = [change(70, "12", Some("1650"))];
    let past = MeterHistory {
        meter: Some(&meter(8, 0)),
        history: &steady(),
        changes: &changes,
        ..MeterHistory::default()
    };
    // Old meter 1600 → removed at 1650 (50), new meter installed at 12, now 262 (250): 300.
    let o = validate(&past, &read(90, "262", &[]), &VeeConfig::default());
    assert_eq!(rules(&o), vec![Rule::MeterChange]);
    assert_eq!(o.consumption, Some(q("300")));
    assert_eq!(flag(&o, Rule::MeterChange).expected, Some(q("12")));
    assert_eq!(o.status, ReadStatus::Flagged);
    // Without a removal read only the new meter's usage counts: 262 − 12 = 250.
    let changes = [change(70, "12", None)];
    let past = MeterHistory {
        changes: &changes,
        ..past
    };
    assert_eq!(
        validate(&past, &read(90, "262", &[]), &VeeConfig::default()).consumption,
        Some(q("250"))
    );
    // A change before the previous read is history: the next read counts normally.
    let hist = history(&[(0, "1000"), (30, "1300"), (60, "1600"), (90, "262")]);
    let past = MeterHistory { history: &hist, ..past };
    let o = validate(&past, &read(120, "560", &[]), &VeeConfig::default());
    assert!(!rules(&o).contains(&Rule::MeterChange), "{:?}", o.flags);
    assert_eq!(o.consumption, Some(q("298")));
}

#[test]
fn meter_change_when_the_serial_differs_from_the_installed_one() {
    let changes = [change(10, "0", None)];
    let hist = history(&[(20, "100"), (50, "400"), (80, "700")]);
    let past = MeterHistory {
        meter: Some(&meter(8, 0)),
        history: &hist,
        changes: &changes,
        ..MeterHistory::default()
    };
    let o = validate(&past, &read(110, "1010", &["serial:B200"]), &VeeConfig::default());
    assert!(o.flags.is_empty(), "{:?}", o.flags);
    let o = validate(&past, &read(110, "1010", &["serial:C300"]), &VeeConfig::default());
    assert_eq!(rules(&o), vec![Rule::MeterChange]);
    assert!(flag(&o, Rule::MeterChange).detail.as_deref().unwrap().contains("C300"));
}

#[test]
fn new_meter_near_zero_without_a_recorded_change() {
    // 1600 → 35 with E = 300, H = 540: not a wrap (W = 99998435), 35 ≤ 540 and ≤ 160.
    let o = run(&meter(8, 0), &steady(), &read(90, "35", &[]));
    assert_eq!(rules(&o), vec![Rule::MeterChange]);
    assert_eq!(o.consumption, Some(q("35")));
    assert_eq!(flag(&o, Rule::MeterChange).limit, Some(q("540")));
    // 1600 → 1590 is a step back (misread or reverse), not a new meter.
    assert_eq!(
        rules(&run(&meter(8, 0), &steady(), &read(90, "1590", &[]))),
        vec![Rule::NegativeUsage]
    );
}

#[test]
fn estimate_limit_after_more_than_n_estimates() {
    let mut r = read(90, "1910", &[]);
    r.read_type = ReadType::Estimate;
    let cfg = VeeConfig::default(); // limit 2
    let past = MeterHistory {
        meter: Some(&meter(8, 0)),
        history: &steady(),
        prior_estimates: 1,
        ..MeterHistory::default()
    };
    assert!(validate(&past, &r, &cfg).flags.is_empty());
    let past = MeterHistory {
        prior_estimates: 2,
        ..past
    };
    let o = validate(&past, &r, &cfg);
    assert_eq!(rules(&o), vec![Rule::EstimateLimit]);
    let f = flag(&o, Rule::EstimateLimit);
    assert_eq!((f.limit, f.actual), (Some(q("2")), Some(q("3"))));
    // A real read after estimates is never held for it.
    assert!(validate(&past, &read(90, "1910", &[]), &cfg).flags.is_empty());
    let cfg = VeeConfig {
        estimate_limit: 5,
        ..VeeConfig::default()
    };
    assert!(validate(&past, &r, &cfg).flags.is_empty());
}

#[test]
fn spike_compares_the_highest_interval_with_the_third_highest() {
    let f = q("3");
    let e = [q("10"), q("12"), q("8"), q("11")];
    // Sorted with 40: 40, 12, 11 → third 11, limit 33: 40 is a spike, 33 is not.
    assert_eq!(
        interval_spike(&e, q("40"), f),
        Some(Spike {
            third: q("11"),
            limit: q("33")
        })
    );
    assert_eq!(interval_spike(&e, q("33"), f), None);
    // Fewer than 3 earlier intervals is not interval data.
    assert_eq!(interval_spike(&e[..2], q("400"), f), None);
    // An idle meter (third-highest 0) has no baseline.
    assert_eq!(interval_spike(&[q("0"), q("0"), q("5")], q("50"), f), None);
}

#[test]
fn spike_on_hourly_reads_within_the_window_only() {
    let hour = |h: i64| day(0) + SignedDuration::from_hours(h);
    let mut hist = Vec::new();
    let mut value = q("1000");
    for h in 0..6 {
        let consumption = if h == 0 { None } else { Some(q("10")) };
        if h > 0 {
            value = value.checked_add(q("10")).unwrap();
        }
        hist.push(HistoryRead {
            id: h as u64,
            read_at: hour(h),
            value,
            consumption,
            status: ReadStatus::Validated,
            excluded: false,
        });
    }
    let mut r = read(0, "1095", &[]);
    r.read_at = hour(6); // 1050 → 1095: 45 > 3 × 10
    let past = MeterHistory {
        meter: Some(&meter(8, 0)),
        history: &hist,
        ..MeterHistory::default()
    };
    let o = validate(&past, &r, &VeeConfig::default());
    let s = flag(&o, Rule::Spike);
    assert_eq!(
        (s.expected, s.limit, s.actual),
        (Some(q("10")), Some(q("30")), Some(q("45")))
    );
    // The same history read a week later is outside a 24 h window: no spike check.
    r.read_at = hour(24 * 7);
    assert!(!rules(&validate(&past, &r, &VeeConfig::default())).contains(&Rule::Spike));
}

#[test]
fn per_read_type_factors_override_the_service_ones() {
    let mut cfg = VeeConfig::default();
    cfg.water.read_type.insert(
        ReadType::Customer,
        ReadTypeFactors {
            high_factor: Some(q("3")),
            low_factor: None,
        },
    );
    // E = 300: manual H = 540 flags 700, a customer read's H = 900 does not.
    let past = MeterHistory {
        meter: Some(&meter(8, 0)),
        history: &steady(),
        ..MeterHistory::default()
    };
    assert_eq!(
        rules(&validate(&past, &read(90, "2300", &[]), &cfg)),
        vec![Rule::HighUsage]
    );
    let mut r = read(90, "2300", &[]);
    r.read_type = ReadType::Customer;
    assert!(validate(&past, &r, &cfg).flags.is_empty());
    // The low factor falls back to the service's 0.4: 100 < 120 is low.
    let mut r = read(90, "1700", &[]);
    r.read_type = ReadType::Customer;
    assert_eq!(flag(&validate(&past, &r, &cfg), Rule::LowUsage).limit, Some(q("120")));
}

#[test]
fn read_type_factors_parse_from_toml() {
    let c = crate::config::Config::parse(
        "[vee]\nestimate_limit = 4\n[vee.gas.read_type.customer]\nhigh_factor = 2.5\n",
        "t",
    )
    .unwrap();
    assert_eq!(c.vee.estimate_limit, 4);
    assert_eq!(c.vee.gas.for_read_type(ReadType::Customer).high_factor, q("2.5"));
    assert_eq!(c.vee.gas.for_read_type(ReadType::Radio).high_factor, q("1.8"));
    let e = crate::config::Config::parse("[vee.gas.read_type.customer]\nhigh = 2\n", "t")
        .unwrap_err()
        .to_string();
    assert!(e.contains("high"), "{e}");
}

/// ADU from running totals is exactly ADU walked read by read, on any history and any part of
/// it the pipeline passes (a slice from the last read before the window).
#[test]
fn running_totals_give_the_same_expectation_as_the_walk() {
    use proptest::prelude::*;
    let statuses = [
        ReadStatus::Validated,
        ReadStatus::Flagged,
        ReadStatus::Estimated,
        ReadStatus::Exported,
    ];
    let mut runner = proptest::test_runner::TestRunner::default();
    runner
        .run(
            &(
                proptest::collection::vec((1i64..200, -50i64..5000, 0usize..4, any::<bool>()), 2..120),
                0i64..30_000,
            ),
            |(steps, after)| {
                let mut history: Vec<HistoryRead> = Vec::new();
                let mut at = day(0);
                let mut value = 1000i64;
                for (hours, used, status, unknown) in steps {
                    at += SignedDuration::from_hours(hours * 24 / 7 + 1);
                    value += used;
                    history.push(HistoryRead {
                        id: 0,
                        read_at: at,
                        value: Quantity::from_units(value).unwrap(),
                        consumption: (!unknown && !history.is_empty()).then(|| Quantity::from_units(used).unwrap()),
                        status: statuses[status],
                        excluded: false,
                    });
                }
                let totals = PeriodTotal::running(&history);
                let read_at = at + SignedDuration::from_hours(after);
                let factors = ServiceFactors::default();
                let walked = expectation(&history, read_at, &factors);
                prop_assert_eq!(walked, expectation_with(&history, Some(&totals), read_at, &factors));
                let from = read_at.checked_sub(ADU_WINDOW).unwrap();
                let start = history.partition_point(|h| h.read_at < from).saturating_sub(1);
                prop_assert_eq!(
                    walked,
                    expectation_with(&history[start..], Some(&totals[start..]), read_at, &factors)
                );
                Ok(())
            },
        )
        .unwrap();
}
