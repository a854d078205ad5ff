//! The day chart of an interval day: its intervals as bars, flagged ones highlighted,
//! estimates and edits drawn differently, the like-day average as a marker; and its flags in
//! plain words. Plain text cells (the review screen styles them; `review day` and reports
//! print them), independent of ratatui.
//!
//! A day has up to 300 intervals and the review screen's detail pane is about 45 columns
//! wide at 80×24, so intervals are grouped into columns: the fewest per column that fit the
//! width, in steps that keep columns on hour boundaries (15-minute data: 1, 2, 4 = hourly,
//! 8, …). A column's bar is the sum of its intervals; its kind is the worst of them (flagged,
//! then all missing, edited, estimated, measured). Hour labels count hours from local
//! midnight, so after a DST change they are off by the hour the day gained or lost (the
//! header says when a day is not 24 hours long).

use crate::model::Quantity;
use crate::model::interval::{IntervalDay, IntervalFlag, IntervalRule, Quality};

/// What a cell of the day chart shows (the TUI colours by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayCell {
    Text,
    /// Measured values (eighth blocks).
    Actual,
    /// Estimated or substituted values (`░`).
    Estimated,
    /// Values a clerk set (`▒`).
    Edited,
    /// Intervals a holding flag names (`▓`, and `^` below the bar).
    Flagged,
    /// No value (`·` on the base line).
    Missing,
    /// The like-day average (`─`).
    Average,
}

/// One chart line as runs of (text, kind).
pub type DayChartLine = Vec<(String, DayCell)>;

const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// How many intervals of `minutes` go in one column so that `count` of them fit `width`
/// columns: a divisor of an hour's intervals, or whole hours (1, 2, 3, 4, 6, 12, 24 of them).
/// `None` when not even one column per day fits.
pub fn intervals_per_column(count: usize, minutes: u16, width: usize) -> Option<usize> {
    let per_hour = usize::from(60 / minutes.clamp(1, 60)).max(1);
    let mut steps: Vec<usize> = (1..=per_hour).filter(|k| per_hour % k == 0).collect();
    steps.extend([2, 3, 4, 6, 12, 24, 25].map(|h| h * per_hour));
    steps.into_iter().find(|&k| count.div_ceil(k) <= width && width > 0)
}

/// One column: its intervals' sum, the like-day sum, and how it is drawn.
struct Column {
    value: Option<Quantity>,
    average: Option<Quantity>,
    kind: DayCell,
}

fn columns(day: &IntervalDay, like_day: &[Quantity], k: usize) -> Vec<Column> {
    let n = day.values.len();
    let flagged: Vec<bool> = {
        let mut f = vec![false; n];
        for flag in day.flags.iter().filter(|f| f.rule.holds_day()) {
            for &i in &flag.intervals {
                if let Some(x) = usize::from(i).checked_sub(1).and_then(|i| f.get_mut(i)) {
                    *x = true;
                }
            }
        }
        f
    };
    let sum = |it: &[Quantity]| -> Option<Quantity> { it.iter().try_fold(Quantity::ZERO, |a, b| a.checked_add(*b)) };
    (0..n.div_ceil(k))
        .map(|c| {
            let r = c * k..((c + 1) * k).min(n);
            let known: Vec<Quantity> = day.values[r.clone()].iter().flatten().copied().collect();
            let quality = |i: usize| day.quality.get(i).copied().unwrap_or(Quality::Missing);
            let kind = if r.clone().any(|i| flagged[i]) {
                DayCell::Flagged
            } else if known.is_empty() {
                DayCell::Missing
            } else if r.clone().any(|i| quality(i) == Quality::Edited) {
                DayCell::Edited
            } else if r
                .clone()
                .any(|i| matches!(quality(i), Quality::Estimated | Quality::Substituted))
            {
                DayCell::Estimated
            } else {
                DayCell::Actual
            };
            let average = (like_day.len() == n).then(|| sum(&like_day[r.clone()])).flatten();
            Column {
                value: (!known.is_empty()).then(|| sum(&known)).flatten(),
                average,
                kind,
            }
        })
        .collect()
}

/// "15 min", "hour", "2 hours".
fn bucket_name(minutes: usize) -> String {
    match minutes {
        60 => "hour".into(),
        m if m % 60 == 0 => format!("{} hours", m / 60),
        m => format!("{m} min"),
    }
}

fn fit(text: String, width: usize) -> String {
    text.chars().take(width).collect()
}

/// Eighths of `rows` cells that `v` fills on a scale of `max` (at least one for a positive value).
fn eighths(v: Option<Quantity>, max: Quantity, rows: usize) -> i64 {
    match v {
        Some(v) if v.is_positive() && max.is_positive() => v
            .mul_div(rows as i128 * 8, i128::from(max.micros()))
            .map_or(0, |e| e.micros())
            .clamp(1, rows as i64 * 8),
        _ => 0,
    }
}

/// Draw `day` in `width` × `height` cells: a header (scale, totals), bars, a row of `^` under
/// flagged columns, hour labels, a legend. `like_day` is the like-day average per interval
/// (empty: no marker). At least 6 rows and as many columns as whole hours of the day are needed.
pub fn day_chart(day: &IntervalDay, like_day: &[Quantity], unit: &str, width: u16, height: u16) -> Vec<DayChartLine> {
    let (width, height) = (usize::from(width), usize::from(height));
    let n = day.values.len();
    let k = match intervals_per_column(n, day.interval_minutes, width) {
        Some(k) if height >= 6 && n > 0 => k,
        _ => {
            return vec![vec![(
                fit("(no room for the day's chart)".into(), width),
                DayCell::Text,
            )]];
        }
    };
    let cols = columns(day, like_day, k);
    let col_width = (width / cols.len()).clamp(1, 3);
    // A gap between bars only when a column has room for one.
    let bar = if col_width > 1 { col_width - 1 } else { 1 };
    let rows = height - 4;
    let max = cols
        .iter()
        .flat_map(|c| [c.value, c.average])
        .flatten()
        .filter(|q| q.is_positive())
        .max()
        .unwrap_or(Quantity::ZERO);
    let minutes = usize::from(day.interval_minutes);
    let hours = n * minutes;
    // Short enough for the review pane (45 columns at 80×24); the date is in the pane's title.
    let mut header = format!("max {max}/{} · day {}", bucket_name(k * minutes), day.total());
    if like_day.len() == n
        && let Some(like) = like_day.iter().try_fold(Quantity::ZERO, |a, b| a.checked_add(*b))
    {
        header.push_str(&format!(" · like {like}"));
    }
    header.push_str(&format!(" {unit}"));
    if hours != 24 * 60 {
        header.push_str(&format!(" · {} h", hours / 60));
    }
    let mut out: Vec<DayChartLine> = Vec::with_capacity(height);
    out.push(vec![(fit(header, width), DayCell::Text)]);
    let levels: Vec<(i64, i64)> = cols
        .iter()
        .map(|c| (eighths(c.value, max, rows), eighths(c.average, max, rows)))
        .collect();
    for r in 0..rows {
        let level = (rows - 1 - r) as i64;
        let mut line: DayChartLine = Vec::new();
        for (c, &(value, average)) in cols.iter().zip(&levels) {
            let filled = value - level * 8;
            // The marker sits in the cell holding the average's top, where the bar leaves room.
            let marker = average > 0 && (average - 1) / 8 == level && filled < 8;
            let (ch, kind) = if marker {
                ('─', DayCell::Average)
            } else {
                let ch = match c.kind {
                    _ if filled <= 0 => match c.kind {
                        DayCell::Missing if level == 0 => '·',
                        _ if level == 0 && c.value.is_some_and(|v| v.is_negative()) => '-',
                        _ => ' ',
                    },
                    DayCell::Flagged => '▓',
                    DayCell::Edited => '▒',
                    DayCell::Estimated => '░',
                    _ => EIGHTHS[filled.clamp(0, 8) as usize],
                };
                (ch, c.kind)
            };
            line.push((ch.to_string().repeat(bar), kind));
            if col_width > 1 {
                line.push((" ".into(), DayCell::Text));
            }
        }
        out.push(line);
    }
    let mut marks: DayChartLine = Vec::new();
    for c in &cols {
        let (s, kind) = if c.kind == DayCell::Flagged {
            ("^".repeat(bar), DayCell::Flagged)
        } else {
            (" ".repeat(bar), DayCell::Text)
        };
        marks.push((s, kind));
        if col_width > 1 {
            marks.push((" ".into(), DayCell::Text));
        }
    }
    out.push(marks);
    // Hour labels every 6 hours (every 3 when the columns are wide), left-aligned on their column.
    let mut labels = vec![' '; cols.len() * col_width];
    let step = if col_width >= 2 { 3 * 60 } else { 6 * 60 };
    for c in 0..cols.len() {
        let start = c * k * minutes;
        // The first label time in this column's span, if any.
        let mark = start.div_ceil(step) * step;
        if mark >= start + k * minutes {
            continue;
        }
        let at = c * col_width;
        if labels[at.saturating_sub(1)..at].iter().all(|x| *x == ' ') {
            for (j, ch) in format!("{}", mark / 60).chars().enumerate() {
                if let Some(cell) = labels.get_mut(at + j) {
                    *cell = ch;
                }
            }
        }
    }
    out.push(vec![(labels.into_iter().collect::<String>(), DayCell::Text)]);
    // The legend in full words where they fit, else in short ones, else as many as fit.
    let legend_of = |words: [&'static str; 5]| -> DayChartLine {
        let kinds = [
            ("█", DayCell::Actual),
            ("░", DayCell::Estimated),
            ("▒", DayCell::Edited),
            ("▓", DayCell::Flagged),
            ("─", DayCell::Average),
        ];
        let mut line: DayChartLine = Vec::new();
        let mut used = 0;
        for ((sym, kind), word) in kinds.into_iter().zip(words) {
            let sep = if used == 0 { "" } else { " " };
            let len = sep.len() + 2 + word.chars().count();
            if used + len > width {
                break;
            }
            used += len;
            line.push((format!("{sep}{sym}"), kind));
            line.push((format!(" {word}"), DayCell::Text));
        }
        line
    };
    let long = legend_of(["measured", "estimate", "edited", "flagged", "like days"]);
    let legend = if long.len() == 10 {
        long
    } else {
        legend_of(["actual", "est", "edit", "flag", "like days"])
    };
    out.push(legend);
    out
}

/// The chart as plain text lines (`review day`, reports).
pub fn day_chart_text(day: &IntervalDay, like_day: &[Quantity], unit: &str, width: u16, height: u16) -> Vec<String> {
    day_chart(day, like_day, unit, width, height)
        .into_iter()
        .map(|l| l.into_iter().map(|(s, _)| s).collect::<String>().trim_end().to_owned())
        .collect()
}

/// What a rule's flag means, in a clerk's words.
pub fn rule_words(rule: IntervalRule) -> &'static str {
    match rule {
        IntervalRule::Gap => "no value from the meter",
        IntervalRule::Spike => "a spike: the highest interval far above the third-highest",
        IntervalRule::ZeroRun => "a run of zero intervals on an active meter",
        IntervalRule::ContinuousFlow => "never stops: every interval above zero (a leak?)",
        IntervalRule::Negative => "a negative value on a delivered channel",
        IntervalRule::SumCheck => "the intervals do not add up to the register reads",
        IntervalRule::High => "day total high against like days",
        IntervalRule::Low => "day total low against like days",
        IntervalRule::Count => "the wrong number of intervals for the day",
        IntervalRule::Duplicate => "another value arrived for stored intervals",
        IntervalRule::NotEstimable => "gaps that could not be estimated",
    }
}

/// `37–40 09:00–10:00, 52 12:45–13:00` (the first `max_runs` runs of consecutive numbers, then
/// `+N more`); times from local midnight.
pub fn interval_ranges(intervals: &[u16], minutes: u16, max_runs: usize) -> String {
    let mut sorted = intervals.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<(u16, u16)> = Vec::new();
    for n in sorted {
        match runs.last_mut() {
            Some((_, b)) if b.checked_add(1) == Some(n) => *b = n,
            _ => runs.push((n, n)),
        }
    }
    let time = |m: u32| format!("{:02}:{:02}", m / 60 % 100, m % 60);
    let m = u32::from(minutes);
    let mut parts: Vec<String> = runs
        .iter()
        .take(max_runs)
        .map(|&(a, b)| {
            let span = format!(
                "{}–{}",
                time(u32::from(a).saturating_sub(1) * m),
                time(u32::from(b) * m)
            );
            if a == b {
                format!("{a} {span}")
            } else {
                format!("{a}–{b} {span}")
            }
        })
        .collect();
    if runs.len() > max_runs {
        parts.push(format!("+{} more", runs.len() - max_runs));
    }
    parts.join(", ")
}

/// A flag in plain words with its numbers: `interval_spike: a spike: … · intervals 37 09:00–09:15
/// · expected 0.5 · limit 1.5 · actual 4.2 kWh`.
pub fn flag_text(flag: &IntervalFlag, minutes: u16, unit: &str) -> String {
    let mut s = format!("{}: {}", flag.rule, rule_words(flag.rule));
    if !flag.intervals.is_empty() {
        s.push_str(&format!(
            " · interval{} {}",
            if flag.intervals.len() == 1 { "" } else { "s" },
            interval_ranges(&flag.intervals, minutes, 4)
        ));
    }
    for (name, v) in [
        ("expected", flag.expected),
        ("limit", flag.limit),
        ("actual", flag.actual),
    ] {
        if let Some(v) = v {
            s.push_str(&format!(" · {name} {v}"));
        }
    }
    if flag.expected.is_some() || flag.limit.is_some() || flag.actual.is_some() {
        s.push_str(&format!(" {unit}"));
    }
    if let Some(d) = &flag.detail {
        s.push_str(&format!(" · {d}"));
    }
    s
}

/// [`flag_text`] in lines of at most `width` characters (see [`wrap`]).
pub fn flag_lines(flag: &IntervalFlag, minutes: u16, unit: &str, width: usize) -> Vec<String> {
    wrap(&flag_text(flag, minutes, unit), width)
}

/// `text` broken at spaces into lines of at most `width` characters, continuation lines
/// indented by 4; a word longer than a line is cut.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(8);
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for word in text.split(' ').filter(|w| !w.is_empty()) {
        let len = line.chars().count();
        if len > 0 && len + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if line.is_empty() {
            if !lines.is_empty() {
                line.push_str("    ");
            }
        } else {
            line.push(' ');
        }
        line.push_str(word);
    }
    lines.push(line);
    lines.into_iter().map(|l| l.chars().take(width).collect()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::interval::{DayKey, IntervalFlag, Method};

    fn q(milli: i64) -> Quantity {
        Quantity::from_micros(milli * 1000)
    }

    /// A 15-minute day shaped like a household: low at night, a morning and an evening peak.
    fn day() -> IntervalDay {
        let key = DayKey {
            meter_id: "E-1".into(),
            channel: "E1".into(),
            date: jiff::civil::date(2025, 3, 4),
        };
        let at = jiff::Timestamp::from_second(1_741_000_000).unwrap();
        let mut d = IntervalDay::empty(key, 15, 96, at);
        for i in 0..96 {
            let hour = i / 4;
            let v = match hour {
                0..=5 => 100,
                6..=8 => 400,
                17..=21 => 600,
                _ => 250,
            };
            d.values[i] = Some(q(v));
            d.quality[i] = Quality::Actual;
        }
        d
    }

    #[test]
    fn columns_group_intervals_on_hour_boundaries() {
        assert_eq!(intervals_per_column(96, 15, 100), Some(1));
        assert_eq!(intervals_per_column(96, 15, 70), Some(2));
        assert_eq!(intervals_per_column(96, 15, 45), Some(4));
        assert_eq!(
            intervals_per_column(100, 15, 45),
            Some(4),
            "fall day: 25 hourly columns"
        );
        assert_eq!(intervals_per_column(288, 5, 45), Some(12));
        assert_eq!(intervals_per_column(24, 60, 45), Some(1));
        assert_eq!(intervals_per_column(96, 15, 10), Some(12), "3-hour columns");
        assert_eq!(intervals_per_column(96, 15, 0), None);
        assert!(intervals_per_column(96, 0, 40).is_some(), "no panic on a zero length");
    }

    #[test]
    fn a_flagged_spike_estimates_and_the_like_day_marker_in_the_review_pane() {
        let mut d = day();
        // A spike at 09:00–09:15 (interval 37), flagged.
        d.values[36] = Some(q(3200));
        d.flags.push(IntervalFlag {
            expected: Some(q(600)),
            limit: Some(q(1800)),
            actual: Some(q(3200)),
            ..IntervalFlag::new(IntervalRule::Spike, vec![37])
        });
        // Two hours estimated at 02:00–04:00, one interval edited at 23:45.
        for i in 8..16 {
            d.quality[i] = Quality::Estimated;
            d.methods[i] = Some(Method::LikeDay);
        }
        d.quality[95] = Quality::Edited;
        d.status = crate::model::ReadStatus::Flagged;
        let like: Vec<Quantity> = (0..96)
            .map(|i| if (68..88).contains(&i) { q(450) } else { q(200) })
            .collect();
        let lines = day_chart_text(&d, &like, "kWh", 45, 12);
        assert!(lines.iter().all(|l| l.chars().count() <= 45), "{lines:#?}");
        assert_eq!(lines.len(), 12);
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn wide_chart_for_the_cli_with_a_gap_and_no_like_days() {
        let mut d = day();
        for i in 40..48 {
            d.values[i] = None;
            d.quality[i] = Quality::Missing;
        }
        let lines = day_chart_text(&d, &[], "kWh", 78, 10);
        assert!(lines.iter().all(|l| l.chars().count() <= 78), "{lines:#?}");
        insta::assert_snapshot!(lines.join("\n"));
    }

    #[test]
    fn odd_days_do_not_panic() {
        let mut d = day();
        d.values.truncate(0);
        assert_eq!(day_chart_text(&d, &[], "kWh", 45, 12).len(), 1);
        let mut d = day();
        d.values[0] = Some(Quantity::from_micros(i64::MAX));
        d.values[1] = Some(Quantity::from_micros(i64::MAX));
        d.values[2] = Some(q(-5));
        d.flags
            .push(IntervalFlag::new(IntervalRule::Spike, vec![0, 500, u16::MAX]));
        for (w, h) in [(0, 0), (1, 6), (24, 6), (45, 5), (200, 60), (u16::MAX, 7)] {
            let _ = day_chart(&d, &[Quantity::ZERO; 3], "kWh", w, h);
        }
        let mut d = day();
        d.interval_minutes = 0;
        let _ = day_chart(&d, &[], "kWh", 45, 12);
    }

    #[test]
    fn flags_read_in_plain_words_with_their_numbers_and_times() {
        let f = IntervalFlag {
            expected: Some(q(600)),
            limit: Some(q(1800)),
            actual: Some(q(3200)),
            ..IntervalFlag::new(IntervalRule::Spike, vec![37, 38, 52])
        };
        assert_eq!(
            flag_text(&f, 15, "kWh"),
            "interval_spike: a spike: the highest interval far above the third-highest · intervals 37–38 09:00–09:30, 52 12:45–13:00 · expected 0.6 · limit 1.8 · actual 3.2 kWh"
        );
        assert_eq!(
            interval_ranges(&[1, 3, 5, 7], 60, 2),
            "1 00:00–01:00, 3 02:00–03:00, +2 more"
        );
        assert!(
            !interval_ranges(&[u16::MAX], 60, 2).is_empty(),
            "no overflow at the last number"
        );
    }
}
