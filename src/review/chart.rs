//! The consumption chart: one bar per period, the read under review drawn differently, as
//! plain text cells (the TUI styles them; reports print them).

use crate::model::Quantity;

use super::Period;

/// What a cell of the chart shows (the TUI colours by it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cell {
    Text,
    Bar,
    /// The period under review.
    Current,
    /// An estimated period.
    Estimated,
}

/// One chart line as runs of (text, kind).
pub type ChartLine = Vec<(String, Cell)>;

const EIGHTHS: [char; 9] = [' ', '▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

/// Draw `periods` in `width` × `height` cells: a scale line, bars, a label line, a legend.
/// The current period is drawn with `▓`, estimates with `░`, others with eighth blocks.
/// Each bar's height in eighths of a character cell for a chart of `rows` rows whose tallest
/// bar is `max`: a positive value is at least one eighth, so it never looks like none.
pub fn eighth_levels(values: impl Iterator<Item = Option<Quantity>>, max: Quantity, rows: usize) -> Vec<i64> {
    values
        .map(|v| match v {
            Some(c) if c.is_positive() && max.is_positive() => c
                .mul_div(rows as i128 * 8, i128::from(max.micros()))
                .map_or(0, |v| v.micros())
                .max(1),
            _ => 0,
        })
        .collect()
}

pub fn chart(periods: &[Period], unit: &str, width: u16, height: u16) -> Vec<ChartLine> {
    let (width, height) = (usize::from(width), usize::from(height));
    if periods.is_empty() || height < 4 || width < 2 * periods.len() {
        return vec![vec![("(no history to chart)".into(), Cell::Text)]];
    }
    let col = (width / periods.len()).clamp(2, 6);
    let bar = col - 1;
    let rows = height - 3;
    let max = periods
        .iter()
        .filter_map(|p| p.consumption)
        .filter(|c| c.is_positive())
        .max()
        .unwrap_or(Quantity::ZERO);
    let mut out: Vec<ChartLine> = Vec::with_capacity(height);
    let current = periods.iter().find(|p| p.current).and_then(|p| p.consumption);
    out.push(vec![(
        format!(
            "max {max} {unit}/period{}",
            current.map(|c| format!(" · this read {c}")).unwrap_or_default()
        ),
        Cell::Text,
    )]);
    let levels = eighth_levels(periods.iter().map(|p| p.consumption), max, rows);
    for r in 0..rows {
        let level = (rows - 1 - r) as i64;
        let mut line: ChartLine = Vec::new();
        for (p, &eighths) in periods.iter().zip(&levels) {
            let kind = if p.current {
                Cell::Current
            } else if p.estimated {
                Cell::Estimated
            } else {
                Cell::Bar
            };
            let filled = eighths - level * 8;
            let ch = match kind {
                Cell::Current if filled > 0 => '▓',
                Cell::Estimated if filled > 0 => '░',
                _ if filled >= 8 => '█',
                _ if filled > 0 => EIGHTHS[filled as usize],
                _ if level == 0 && p.consumption.is_some_and(|c| c.is_negative()) => '-',
                _ => ' ',
            };
            line.push((ch.to_string().repeat(bar), kind));
            line.push((" ".into(), Cell::Text));
        }
        out.push(line);
    }
    let mut labels: ChartLine = Vec::new();
    for p in periods {
        let month = p.read_at.to_zoned(jiff::tz::TimeZone::UTC).month() as usize;
        let label = if bar >= 3 {
            MONTHS[month - 1].to_owned()
        } else {
            format!("{month:02}")
        };
        let label: String = format!("{label:<bar$}").chars().take(bar).collect();
        labels.push((label, if p.current { Cell::Current } else { Cell::Text }));
        labels.push((" ".into(), Cell::Text));
    }
    out.push(labels);
    out.push(vec![
        ("▓".into(), Cell::Current),
        (" this read  ".into(), Cell::Text),
        ("░".into(), Cell::Estimated),
        (" estimate".into(), Cell::Text),
    ]);
    out
}

/// The chart as plain text lines (reports).
pub fn chart_text(periods: &[Period], unit: &str, width: u16, height: u16) -> Vec<String> {
    chart(periods, unit, width, height)
        .into_iter()
        .map(|l| l.into_iter().map(|(s, _)| s).collect::<String>().trim_end().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::ReadStatus;

    fn period(month: i8, c: Option<i64>, current: bool) -> Period {
        Period {
            read_id: 0,
            read_at: jiff::civil::date(2025, month, 1)
                .at(8, 0, 0, 0)
                .to_zoned(jiff::tz::TimeZone::UTC)
                .unwrap()
                .timestamp(),
            consumption: c.map(|c| Quantity::from_units(c).unwrap()),
            status: ReadStatus::Validated,
            estimated: false,
            current,
        }
    }

    #[test]
    fn a_spike_stands_out_and_is_drawn_as_the_current_read() {
        let mut p: Vec<Period> = (1..=3).map(|m| period(m, Some(300), false)).collect();
        p.push(period(4, Some(1200), true));
        let lines = chart_text(&p, "gal", 16, 7);
        // 4 bar rows: 300/1200 of 32 eighths = 8 → one full cell; the spike fills all rows.
        assert_eq!(lines[0], "max 1200 gal/period · this read 1200");
        assert_eq!(lines[1], "            ▓▓▓");
        assert_eq!(lines[4], "███ ███ ███ ▓▓▓");
        assert_eq!(lines[5], "Jan Feb Mar Apr");
        assert_eq!(lines.len(), 7);
    }

    #[test]
    fn a_stopped_meter_shows_an_empty_bar() {
        let p = vec![period(1, Some(100), false), period(2, Some(0), true)];
        let lines = chart_text(&p, "m3", 6, 5);
        assert_eq!(lines[1], "██");
        assert_eq!(lines[2], "██");
        assert_eq!(lines[3], "01 02");
    }
}
