//! Interval VEE: every rule at its threshold, and the estimation methods with exact values.
//! Days are 15-minute days of America/Los_Angeles (96 values; 92 on 2026-03-08, 100 on
//! 2026-11-01). 2026-06-10 is a Wednesday.

use std::ops::RangeInclusive;

use jiff::Timestamp;
use jiff::civil::{Date, date};
use jiff::tz::TimeZone;

use super::*;
use crate::model::interval::{DayKey, IntervalRule as R, Method, Quality};
use crate::model::{Quantity, ReadStatus, Service};

fn q(s: &str) -> Quantity {
    Quantity::parse(s).unwrap()
}

fn la() -> DayClock {
    DayClock::new(TimeZone::get("America/Los_Angeles").unwrap())
}

/// A day of `n` actual values `v` from a sender.
fn flat(d: Date, n: usize, v: &str) -> IntervalDay {
    let mut day = IntervalDay::empty(
        DayKey {
            meter_id: "M1".into(),
            channel: "E1".into(),
            date: d,
        },
        15,
        n,
        Timestamp::UNIX_EPOCH,
    );
    let src = day.source_index("nem12 test.csv");
    for i in 0..n {
        day.values[i] = Some(q(v));
        day.quality[i] = Quality::Actual;
        day.value_source[i] = Some(src);
    }
    day
}

/// Sets the 1-based intervals `ns` to the actual value `v`.
fn put(day: &mut IntervalDay, ns: RangeInclusive<u16>, v: &str) {
    for n in ns {
        let i = usize::from(n) - 1;
        day.values[i] = Some(q(v));
        day.quality[i] = Quality::Actual;
    }
}

/// Makes the 1-based intervals `ns` missing.
fn drop(day: &mut IntervalDay, ns: RangeInclusive<u16>) {
    for n in ns {
        let i = usize::from(n) - 1;
        day.values[i] = None;
        day.quality[i] = Quality::Missing;
        day.value_source[i] = None;
    }
}

fn value(day: &IntervalDay, n: u16) -> Option<Quantity> {
    day.values[usize::from(n) - 1]
}

struct Fx {
    clock: DayClock,
    rules: IntervalRules,
    service: Option<Service>,
    direction: Direction,
    active: bool,
    holidays: Vec<Date>,
    history: Vec<IntervalDay>,
    registers: Vec<RegisterPoint>,
    duplicates: Vec<DuplicateValue>,
}

impl Fx {
    fn new() -> Self {
        Fx {
            clock: la(),
            rules: IntervalRules::default(),
            service: Some(Service::Electric),
            direction: Direction::Delivered,
            active: true,
            holidays: Vec::new(),
            history: Vec::new(),
            registers: Vec::new(),
            duplicates: Vec::new(),
        }
    }

    fn run(&self, day: &mut IntervalDay) {
        let ctx = DayContext {
            clock: &self.clock,
            rules: &self.rules,
            service: self.service,
            direction: self.direction,
            active: self.active,
            holidays: &self.holidays,
            history: &self.history,
            registers: &self.registers,
            duplicates: &self.duplicates,
        };
        validate_day(day, &ctx);
    }

    /// A register read at the start of `d` (local midnight).
    fn register_at(&mut self, d: Date, value: &str) {
        let at = self.clock.day_start(d).unwrap();
        self.registers.push(RegisterPoint { at, value: q(value) });
    }
}

/// A flag's rule, intervals and numbers (expected, limit, actual).
type Seen = (R, Vec<u16>, Option<Quantity>, Option<Quantity>, Option<Quantity>);

fn seen(day: &IntervalDay) -> Vec<Seen> {
    day.flags
        .iter()
        .map(|f| (f.rule, f.intervals.clone(), f.expected, f.limit, f.actual))
        .collect()
}

fn flag(rule: R, intervals: impl IntoIterator<Item = u16>, e: Option<&str>, l: Option<&str>, a: Option<&str>) -> Seen {
    (rule, intervals.into_iter().collect(), e.map(q), l.map(q), a.map(q))
}

fn gap(intervals: RangeInclusive<u16>) -> Seen {
    let n = intervals.clone().count().to_string();
    flag(R::Gap, intervals, None, None, Some(&n))
}

fn is_own_estimate(day: &IntervalDay, n: u16, method: Method) -> bool {
    let i = usize::from(n) - 1;
    day.quality[i] == Quality::Estimated
        && day.methods[i] == Some(method)
        && day.value_source[i].map(|s| day.sources[usize::from(s)].as_str()) == Some(ESTIMATE_SOURCE)
}

const WED: Date = date(2026, 6, 10);

// ---- estimation ----

#[test]
fn one_hour_gap_is_interpolated_linearly_with_exact_values() {
    let fx = Fx::new();
    let mut day = flat(WED, 96, "1");
    put(&mut day, 25..=25, "2");
    drop(&mut day, 21..=24);
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![gap(21..=24)]);
    let filled: Vec<_> = (21..=24).map(|n| value(&day, n)).collect();
    assert_eq!(filled, ["1.2", "1.4", "1.6", "1.8"].map(|v| Some(q(v))));
    assert!((21..=24).all(|n| is_own_estimate(&day, n, Method::Linear)));
    // The gap flag does not hold a day estimation repaired.
    assert_eq!(day.status, ReadStatus::Estimated);

    // Validating again makes the same estimates (meterd's own are cleared first).
    let before = day.clone();
    fx.run(&mut day);
    assert_eq!(day, before);
}

#[test]
fn interpolated_values_are_rounded_half_away_from_zero_to_a_micro_unit() {
    let fx = Fx::new();
    let mut day = flat(WED, 96, "1");
    put(&mut day, 13..=13, "2");
    drop(&mut day, 11..=12);
    put(&mut day, 50..=50, "2");
    drop(&mut day, 51..=52);
    fx.run(&mut day);
    assert_eq!(value(&day, 11), Some(q("1.333333")));
    assert_eq!(value(&day, 12), Some(q("1.666667")));
    assert_eq!(value(&day, 51), Some(q("1.666667")));
    assert_eq!(value(&day, 52), Some(q("1.333333")));
    assert_eq!(seen(&day), vec![flag(R::Gap, [11, 12, 51, 52], None, None, Some("4"))]);
}

#[test]
fn two_hour_gap_is_interpolated_and_one_interval_more_is_not() {
    let fx = Fx::new();
    let mut day = flat(WED, 96, "1");
    drop(&mut day, 21..=28);
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![gap(21..=28)]);
    assert!((21..=28).all(|n| value(&day, n) == Some(q("1")) && is_own_estimate(&day, n, Method::Linear)));

    // 2¼ hours: like days needed, and there are none.
    let mut day = flat(WED, 96, "1");
    drop(&mut day, 21..=29);
    fx.run(&mut day);
    assert_eq!(
        seen(&day),
        vec![gap(21..=29), flag(R::NotEstimable, 21..=29, None, None, None)]
    );
    assert!((21..=29).all(|n| value(&day, n).is_none()));
    assert_eq!(day.status, ReadStatus::Flagged);
}

/// Weekdays before 2026-06-10 with intervals 41–52 (10:00–13:00) at 2, 3, 4.5; the Sunday
/// between them is no like day, and neither is Thursday 06-04 (a missing interval). Wednesday
/// 06-03 is older than the three needed.
fn three_like_weekdays(fx: &mut Fx, values: [&str; 3]) {
    for (d, v) in [date(2026, 6, 9), date(2026, 6, 8), date(2026, 6, 5)]
        .into_iter()
        .zip(values)
    {
        let mut like = flat(d, 96, "1");
        put(&mut like, 41..=52, v);
        fx.history.push(like);
    }
    let mut sunday = flat(date(2026, 6, 7), 96, "1");
    put(&mut sunday, 41..=52, "50");
    fx.history.push(sunday);
    let mut holed = flat(date(2026, 6, 4), 96, "1");
    put(&mut holed, 41..=52, "50");
    drop(&mut holed, 1..=1);
    fx.history.push(holed);
}

#[test]
fn three_hour_gap_takes_the_average_of_three_like_days() {
    let mut fx = Fx::new();
    three_like_weekdays(&mut fx, ["2", "3", "4.5"]);
    let mut older = flat(date(2026, 6, 3), 96, "1");
    put(&mut older, 41..=52, "3");
    fx.history.push(older);
    let mut day = flat(WED, 96, "1");
    drop(&mut day, 41..=52);
    fx.run(&mut day);
    // (2 + 3 + 4.5) / 3 = 3.1666…, rounded to 3.166667.
    assert_eq!(seen(&day), vec![gap(41..=52)]);
    assert!((41..=52).all(|n| value(&day, n) == Some(q("3.166667")) && is_own_estimate(&day, n, Method::LikeDay)));
    assert_eq!(day.status, ReadStatus::Estimated);
}

#[test]
fn like_day_estimate_is_scaled_to_the_register_difference_around_the_day() {
    let mut fx = Fx::new();
    three_like_weekdays(&mut fx, ["2", "3", "4"]);
    // The register moved 94 over the day; the 84 known intervals leave 10 for the 12
    // estimated ones, whose like-day average (3 each, 36) is scaled by 10/36.
    fx.register_at(WED, "1000");
    fx.register_at(date(2026, 6, 11), "1094");
    let mut day = flat(WED, 96, "1");
    drop(&mut day, 41..=52);
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![gap(41..=52)]);
    // 10/12 = 0.8333…: rounded on the running sum, so the twelve add up to 10 exactly.
    let expected: Vec<_> = ["0.833333", "0.833334", "0.833333"]
        .repeat(4)
        .into_iter()
        .map(|v| Some(q(v)))
        .collect();
    let filled: Vec<_> = (41..=52).map(|n| value(&day, n)).collect();
    assert_eq!(filled, expected);
    assert_eq!(day.total(), q("94"));
    assert!((41..=52).all(|n| is_own_estimate(&day, n, Method::LikeDay)));
    assert_eq!(day.status, ReadStatus::Estimated);

    // The same with the reads a day apart around the previous day and this one: the known
    // previous day (108) counts as known.
    fx.registers.clear();
    fx.register_at(date(2026, 6, 9), "1000");
    fx.register_at(date(2026, 6, 11), "1202");
    let mut again = flat(WED, 96, "1");
    drop(&mut again, 41..=52);
    fx.run(&mut again);
    assert_eq!(again.values, day.values);
}

#[test]
fn register_difference_below_the_known_intervals_leaves_like_days_unscaled_and_holds_the_day() {
    let mut fx = Fx::new();
    three_like_weekdays(&mut fx, ["2", "3", "4"]);
    fx.register_at(WED, "1000");
    fx.register_at(date(2026, 6, 11), "1080");
    let mut day = flat(WED, 96, "1");
    drop(&mut day, 41..=52);
    fx.run(&mut day);
    assert_eq!(
        seen(&day),
        vec![gap(41..=52), flag(R::SumCheck, 41..=52, Some("80"), None, Some("120"))]
    );
    assert!((41..=52).all(|n| value(&day, n) == Some(q("3"))));
    assert_eq!(day.status, ReadStatus::Flagged);
}

#[test]
fn an_outage_interval_is_never_an_interpolation_end_point() {
    let mut fx = Fx::new();
    let mut day = flat(WED, 96, "1");
    drop(&mut day, 30..=30);
    day.outages = vec![29];
    let template = day.clone();
    fx.run(&mut day);
    assert_eq!(
        seen(&day),
        vec![gap(30..=30), flag(R::NotEstimable, [30], None, None, None)]
    );
    assert_eq!(value(&day, 30), None);

    // Like days: the most recent has an outage and is passed over.
    for (d, v) in [
        (date(2026, 6, 9), "9"),
        (date(2026, 6, 8), "2"),
        (date(2026, 6, 5), "3"),
        (date(2026, 6, 4), "4"),
    ] {
        let mut like = flat(d, 96, "1");
        put(&mut like, 30..=30, v);
        fx.history.push(like);
    }
    fx.history[0].outages = vec![5];
    let mut day = template.clone();
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![gap(30..=30)]);
    assert_eq!(value(&day, 30), Some(q("3")));
    assert!(is_own_estimate(&day, 30, Method::LikeDay));

    // Without the outage, the same one-interval gap is interpolated.
    let mut day = template;
    day.outages.clear();
    fx.run(&mut day);
    assert_eq!(value(&day, 30), Some(q("1")));
    assert!(is_own_estimate(&day, 30, Method::Linear));
}

#[test]
fn a_holiday_takes_sundays_as_like_days() {
    let mut fx = Fx::new();
    let holiday = date(2026, 7, 3);
    fx.holidays = vec![holiday];
    for (d, v) in [
        (date(2026, 7, 2), "50"),
        (date(2026, 6, 28), "1"),
        (date(2026, 6, 27), "50"),
        (date(2026, 6, 21), "2"),
        (date(2026, 6, 14), "6"),
    ] {
        let mut like = flat(d, 96, "1");
        put(&mut like, 1..=12, v);
        fx.history.push(like);
    }
    let mut day = flat(holiday, 96, "1");
    drop(&mut day, 1..=12);
    fx.run(&mut day);
    assert!((1..=12).all(|n| value(&day, n) == Some(q("3"))));
    assert_eq!(seen(&day), vec![gap(1..=12)]);
}

#[test]
fn estimates_are_made_again_and_senders_values_are_kept() {
    let fx = Fx::new();
    let mut day = flat(WED, 96, "1");
    put(&mut day, 25..=25, "2");
    // meterd's earlier (now wrong) estimates…
    let ours = day.source_index(ESTIMATE_SOURCE);
    for i in 20..24 {
        day.values[i] = Some(q("9"));
        day.quality[i] = Quality::Estimated;
        day.methods[i] = Some(Method::Linear);
        day.value_source[i] = Some(ours);
    }
    // …a sender's substitute, and a sender's E17 (which reads as Method::Linear).
    let sender = day.source_index("nem12 test.csv");
    day.values[29] = Some(q("7"));
    day.quality[29] = Quality::Substituted;
    day.methods[29] = Some(Method::Source(14));
    day.values[39] = Some(q("5"));
    day.quality[39] = Quality::Estimated;
    day.methods[39] = Some(Method::Linear);
    day.value_source[39] = Some(sender);
    fx.run(&mut day);
    let filled: Vec<_> = (21..=24).map(|n| value(&day, n)).collect();
    assert_eq!(filled, ["1.2", "1.4", "1.6", "1.8"].map(|v| Some(q(v))));
    assert_eq!((value(&day, 30), day.quality[29]), (Some(q("7")), Quality::Substituted));
    assert_eq!((value(&day, 40), day.value_source[39]), (Some(q("5")), Some(sender)));
    // Cleared first, meterd's estimates are a gap again, and filled again.
    assert_eq!(seen(&day), vec![gap(21..=24)]);
    assert_eq!(day.status, ReadStatus::Estimated);

    // A day whose only non-actual value is a sender's substitute is validated, not estimated.
    let mut day = flat(WED, 96, "1");
    day.quality[29] = Quality::Substituted;
    day.methods[29] = Some(Method::Source(14));
    fx.run(&mut day);
    assert_eq!((seen(&day), day.status), (vec![], ReadStatus::Validated));
}

// ---- rules ----

#[test]
fn spike_fires_only_above_factor_times_the_third_highest_actual_value() {
    let fx = Fx::new();
    let mut day = flat(WED, 96, "1");
    put(&mut day, 10..=10, "2");
    put(&mut day, 20..=20, "2");
    put(&mut day, 30..=30, "6");
    // A sender's substitute far above is no measurement and does not count.
    day.values[39] = Some(q("100"));
    day.quality[39] = Quality::Substituted;
    let template = day.clone();
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![]);

    let mut day = template;
    put(&mut day, 30..=30, "6.000001");
    fx.run(&mut day);
    assert_eq!(
        seen(&day),
        vec![flag(R::Spike, [30], Some("2"), Some("6"), Some("6.000001"))]
    );
    assert_eq!(day.status, ReadStatus::Flagged);
}

#[test]
fn zero_run_fires_at_exactly_the_run_length_on_an_active_meter() {
    let mut fx = Fx::new();
    assert_eq!(fx.rules.zero_run_for(15), 32);
    let mut day = flat(WED, 96, "1");
    put(&mut day, 1..=31, "0");
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![]);

    let mut day = flat(WED, 96, "1");
    put(&mut day, 1..=32, "0");
    let template = day.clone();
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![flag(R::ZeroRun, 1..=32, None, Some("32"), Some("32"))]);

    // A zero in an outage interval breaks the run.
    let mut day = template.clone();
    day.outages = vec![16];
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![]);

    fx.active = false;
    let mut day = template;
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![]);
}

#[test]
fn continuous_flow_on_water_but_not_on_electric() {
    let mut fx = Fx::new();
    fx.service = Some(Service::Water);
    let mut day = flat(WED, 96, "0.5");
    put(&mut day, 17..=17, "0.1");
    put(&mut day, 60..=60, "0.1");
    let template = day.clone();
    fx.run(&mut day);
    assert_eq!(
        seen(&day),
        vec![flag(R::ContinuousFlow, [17], None, Some("0"), Some("0.1"))]
    );
    assert_eq!(
        day.flags[0].detail.as_deref(),
        Some("usage never reached zero: the lowest interval is number 17 with 0.1")
    );

    // One zero interval: the flow stopped.
    let mut day = template.clone();
    put(&mut day, 60..=60, "0");
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![]);

    fx.service = Some(Service::Electric);
    let mut day = template;
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![]);
}

#[test]
fn negative_on_a_delivered_channel_but_not_on_a_received_one() {
    let mut fx = Fx::new();
    let mut day = flat(WED, 96, "1");
    put(&mut day, 5..=5, "-0.2");
    put(&mut day, 6..=6, "-0.5");
    let template = day.clone();
    fx.run(&mut day);
    assert_eq!(
        seen(&day),
        vec![flag(R::Negative, [5, 6], None, Some("0"), Some("-0.5"))]
    );

    fx.direction = Direction::Received;
    let mut day = template;
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![]);
}

#[test]
fn sum_check_passes_at_two_percent_and_fails_above() {
    let mut fx = Fx::new();
    fx.register_at(WED, "500");
    fx.register_at(date(2026, 6, 11), "600");
    // 92 × 1 + 4 × 1.5 = 98: 2 below the register's 100, exactly 2 %.
    let mut day = flat(WED, 96, "1");
    put(&mut day, 1..=4, "1.5");
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![]);

    put(&mut day, 1..=1, "1.499999");
    fx.run(&mut day);
    assert_eq!(
        seen(&day),
        vec![flag(R::SumCheck, 1..=96, Some("100"), Some("2"), Some("97.999999"))]
    );

    // Above the register: 102 passes, 102.000001 does not.
    let mut day = flat(WED, 96, "1");
    put(&mut day, 1..=4, "2.5");
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![]);
    put(&mut day, 1..=1, "2.500001");
    fx.run(&mut day);
    assert_eq!(
        seen(&day),
        vec![flag(R::SumCheck, 1..=96, Some("100"), Some("2"), Some("102.000001"))]
    );

    // A missing interval in the span: no sum check (the gap is interpolated).
    let mut day = flat(WED, 96, "1");
    drop(&mut day, 50..=50);
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![gap(50..=50)]);
}

#[test]
fn sum_check_reaches_into_history_days() {
    let mut fx = Fx::new();
    // From noon of the day before (48 intervals of 1) to the end of the day (96 of 1).
    let noon = fx.clock.interval_start(date(2026, 6, 9), 15, 49).unwrap();
    fx.registers = vec![
        RegisterPoint {
            at: noon,
            value: q("0"),
        },
        RegisterPoint {
            at: fx.clock.day_start(date(2026, 6, 11)).unwrap(),
            value: q("150"),
        },
    ];
    let mut day = flat(WED, 96, "1");
    // Without the day before, the span is not covered: no check.
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![]);

    fx.history.push(flat(date(2026, 6, 9), 96, "1"));
    fx.run(&mut day);
    assert_eq!(
        seen(&day),
        vec![flag(R::SumCheck, 1..=96, Some("150"), Some("3"), Some("144"))]
    );
}

#[test]
fn high_and_low_against_the_like_day_average() {
    let mut fx = Fx::new();
    fx.history.push(flat(date(2026, 6, 9), 96, "1"));
    // One like day is not enough.
    let mut day = flat(WED, 96, "9");
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![]);

    // Average 96: high above max(1.8 × 96, 96 + 1) = 172.8, low below 0.4 × 96 = 38.4.
    fx.history.push(flat(date(2026, 6, 8), 96, "1"));
    let mut day = flat(WED, 96, "1.8");
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![]);
    put(&mut day, 1..=1, "1.800001");
    fx.run(&mut day);
    assert_eq!(
        seen(&day),
        vec![flag(R::High, [], Some("96"), Some("172.8"), Some("172.800001"))]
    );

    let mut day = flat(WED, 96, "0.4");
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![]);
    put(&mut day, 1..=1, "0.399999");
    fx.run(&mut day);
    assert_eq!(
        seen(&day),
        vec![flag(R::Low, [], Some("96"), Some("38.4"), Some("38.399999"))]
    );

    // A zero day is no low day (the zero run speaks for it).
    let mut day = flat(WED, 96, "0");
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![flag(R::ZeroRun, 1..=96, None, Some("32"), Some("96"))]);

    // A small average: the margin min_high_delta = 1 decides (limit 0.96 + 1, not 1.728).
    // (A spike factor out of the way: one interval carries the day.)
    fx.rules.spike_factor = q("1000");
    fx.history = vec![flat(date(2026, 6, 9), 96, "0.01"), flat(date(2026, 6, 8), 96, "0.01")];
    let mut day = flat(WED, 96, "0.01");
    put(&mut day, 1..=1, "1.01");
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![]);
    put(&mut day, 1..=1, "1.010001");
    fx.run(&mut day);
    assert_eq!(
        seen(&day),
        vec![flag(R::High, [], Some("0.96"), Some("1.96"), Some("1.960001"))]
    );
}

#[test]
fn dst_days_have_92_and_100_quarter_hours() {
    let fx = Fx::new();
    for (d, n) in [(date(2026, 3, 8), 92), (date(2026, 11, 1), 100)] {
        let mut day = flat(d, n, "1");
        fx.run(&mut day);
        assert_eq!((seen(&day), day.status), (vec![], ReadStatus::Validated), "{d}");

        let mut day = flat(d, 96, "1");
        fx.run(&mut day);
        let n = n.to_string();
        assert_eq!(seen(&day), vec![flag(R::Count, [], Some(&n), None, Some("96"))], "{d}");
        assert_eq!(day.status, ReadStatus::Flagged);
    }
    let mut day = flat(date(2026, 3, 8), 96, "1");
    fx.run(&mut day);
    assert_eq!(
        day.flags[0].detail.as_deref(),
        Some("96 values for a 23-hour local day of 92 intervals of 15 minutes")
    );
}

#[test]
fn gap_in_the_repeated_hour_of_the_fall_day_is_interpolated() {
    let fx = Fx::new();
    // Intervals 5–8 are 01:00–02:00 PDT, 9–12 the same hour again in PST.
    let mut day = flat(date(2026, 11, 1), 100, "1");
    put(&mut day, 13..=13, "2");
    drop(&mut day, 9..=12);
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![gap(9..=12)]);
    let filled: Vec<_> = (9..=12).map(|n| value(&day, n)).collect();
    assert_eq!(filled, ["1.2", "1.4", "1.6", "1.8"].map(|v| Some(q(v))));
    assert_eq!(day.status, ReadStatus::Estimated);
}

#[test]
fn spring_day_takes_like_day_intervals_at_the_same_local_time() {
    let mut fx = Fx::new();
    // 03:00–06:00 is intervals 9–20 on the 92-interval day and 13–24 on ordinary Sundays.
    for (d, v) in [
        (date(2026, 3, 1), "2"),
        (date(2026, 2, 22), "3"),
        (date(2026, 2, 15), "4"),
    ] {
        let mut like = flat(d, 96, "1");
        put(&mut like, 13..=24, v);
        fx.history.push(like);
    }
    let mut day = flat(date(2026, 3, 8), 92, "1");
    drop(&mut day, 9..=20);
    fx.run(&mut day);
    assert_eq!(seen(&day), vec![gap(9..=20)]);
    assert!((9..=20).all(|n| value(&day, n) == Some(q("3")) && is_own_estimate(&day, n, Method::LikeDay)));
}

#[test]
fn duplicate_flag_lists_the_intervals_and_names_the_values() {
    let mut fx = Fx::new();
    fx.duplicates = [(7, "1", "1.5"), (3, "2", "2.5"), (9, "1", "0"), (11, "1", "3")]
        .map(|(interval, stored, arrived)| DuplicateValue {
            interval,
            stored: q(stored),
            arrived: q(arrived),
        })
        .to_vec();
    let mut day = flat(WED, 96, "1");
    fx.run(&mut day);
    assert_eq!(
        seen(&day),
        vec![flag(R::Duplicate, [3, 7, 9, 11], Some("1"), None, Some("1.5"))]
    );
    assert_eq!(
        day.flags[0].detail.as_deref(),
        Some(
            "interval 7: stored 1, arrived 1.5; interval 3: stored 2, arrived 2.5; interval 9: stored 1, arrived 0; and 1 more"
        )
    );
    assert_eq!(day.status, ReadStatus::Flagged);
}
