//! Drawing the review screen: counts and filter on top, queue left, detail and chart right,
//! message and keys at the bottom; dialogs and help over it.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, List, ListItem, ListState, Paragraph, Wrap};

use super::{App, Dialog, DialogKind, View};
use crate::review::chart::{Cell, chart};
use crate::review::interval_chart::{DayCell, day_chart, interval_ranges, rule_words};
use crate::review::{ApprovalItem, DayDetail, ReadDetail, day_severity, severity};

/// The keys, as the help line shows them (fits 80 columns).
pub const HELP_LINE: &str = "↑↓ move a accept e edit s estimate r reject n note u undo f filter ? help q quit";

/// The keys on an interval day (fits 80 columns).
pub const DAY_HELP_LINE: &str = "↑↓ move a accept e edit intervals s estimate r reject U usage ? help q quit";

/// The keys of the approvals queue.
pub const APPROVALS_HELP_LINE: &str = "↑↓ move a approve d decline n note p held queue g reload ? help q quit";

const KEYS: &[(&str, &str)] = &[
    ("↑ ↓  j k", "previous / next read (PgUp PgDn Home End)"),
    ("a", "accept the read as is"),
    ("e", "edit the value (a reason is required; the original stays)"),
    ("s", "estimate: ADU × days, CPUC rounding; confirm"),
    ("r", "reject and create a re-read service order"),
    ("n", "add a note"),
    ("u", "undo your last change, while still on the read"),
    ("on a day", "a accept, e edit intervals, s estimate, r reject, U usage"),
    ("f", "filter by route, rule, service (empty = all)"),
    ("g", "reload the queue"),
    ("p", "approvals queue (supervisors): a approve, d decline; p back"),
    ("Tab Enter Esc", "in a dialog: next field, confirm, cancel"),
    ("? F1", "this help (any key closes it)"),
    ("q  Ctrl-C", "quit"),
];

fn bold() -> Style {
    Style::new().add_modifier(Modifier::BOLD)
}

impl App {
    /// Draw the whole screen.
    pub fn render(&self, frame: &mut Frame<'_>) {
        let area = frame.area();
        // A long message (a refusal naming who did what) gets a second row.
        let message_rows = match &self.message {
            Some((m, _)) if m.chars().count() > usize::from(area.width) => 2,
            _ => 1,
        };
        let [top, filter, main, message, help] = Layout::vertical([
            Constraint::Length(1),
            Constraint::Length(1),
            Constraint::Min(5),
            Constraint::Length(message_rows),
            Constraint::Length(1),
        ])
        .areas(area);
        frame.render_widget(Paragraph::new(self.counts_line()), top);
        frame.render_widget(
            Paragraph::new(self.filter_line()).style(Style::new().fg(Color::DarkGray)),
            filter,
        );
        if let Some(why) = &self.unavailable {
            let text = vec![
                Line::from(Span::styled("No queue to show:", bold())),
                Line::from(""),
                Line::from(why.as_str()),
                Line::from(""),
                Line::from("r to retry · q to quit"),
            ];
            let p = Paragraph::new(text)
                .style(Style::new().fg(Color::Red))
                .wrap(Wrap { trim: true })
                .block(Block::default().borders(Borders::ALL).title(" Not connected "));
            frame.render_widget(p, main);
        } else {
            let queue_width = (area.width * 5 / 12).clamp(30, 50);
            let [left, right] = Layout::horizontal([Constraint::Length(queue_width), Constraint::Min(20)]).areas(main);
            self.render_queue(frame, left);
            self.render_detail(frame, right);
        }
        if let Some((m, err)) = &self.message {
            let style = if *err {
                Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
            } else {
                Style::new().fg(Color::Green)
            };
            frame.render_widget(
                Paragraph::new(m.as_str()).style(style).wrap(Wrap { trim: true }),
                message,
            );
        }
        let keys = match self.view {
            View::Held if self.day.is_some() => DAY_HELP_LINE,
            View::Held => HELP_LINE,
            View::Approvals => APPROVALS_HELP_LINE,
        };
        frame.render_widget(
            Paragraph::new(keys).style(Style::new().add_modifier(Modifier::REVERSED)),
            help,
        );
        if let Some(d) = &self.dialog {
            render_dialog(frame, d, area);
        }
        if self.help {
            render_help(frame, area);
        }
        if let (Some(top), Some(day)) = (self.usage, &self.day) {
            render_usage(frame, area, &day.usage, top);
        }
    }

    fn counts_line(&self) -> Line<'static> {
        if self.unavailable.is_some() {
            return Line::from(Span::styled(
                format!("meterd review · {} · no queue", self.clerk),
                bold(),
            ));
        }
        if self.view == View::Approvals {
            return Line::from(Span::styled(
                format!(
                    "meterd review · {} · approvals · {} awaiting approval",
                    self.clerk,
                    self.approvals.len()
                ),
                bold(),
            ));
        }
        let mut spans = vec![Span::styled(
            format!("meterd review · {} · {} held", self.clerk, self.queue.total),
            bold(),
        )];
        // Only when there is any: a screen without pending adjustments looks as it always did.
        if !self.approvals.is_empty() {
            spans.push(Span::styled(
                format!(" · {} to approve (p)", self.approvals.len()),
                Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
            ));
        }
        // Only when there is any, as above.
        if self.queue.days_total > 0 {
            let n = self.queue.days_total;
            spans.push(Span::styled(
                format!(" · {n} {}", if n == 1 { "day" } else { "days" }),
                bold(),
            ));
        }
        let mut counts: Vec<_> = self.queue.counts.iter().collect();
        counts.sort_by(|a, b| severity(*b.0).cmp(&severity(*a.0)).then(a.0.cmp(b.0)));
        for (rule, n) in counts {
            spans.push(Span::raw(format!(" · {rule} {n}")));
        }
        let mut day_counts: Vec<_> = self.queue.day_counts.iter().collect();
        day_counts.sort_by(|a, b| day_severity(*b.0).cmp(&day_severity(*a.0)).then(a.0.cmp(b.0)));
        for (rule, n) in day_counts {
            spans.push(Span::raw(format!(" · {rule} {n}")));
        }
        Line::from(spans)
    }

    fn filter_line(&self) -> String {
        if self.view == View::Approvals {
            return format!(
                "edits and estimates past the approval threshold, oldest first · showing {}",
                self.approvals.len()
            );
        }
        let f = &self.filter;
        let days = match self.queue.days.len() {
            0 => String::new(),
            n => format!(" + {n} days"),
        };
        format!(
            "filter: route {} · rule {} · service {} · showing {}{days}",
            f.route.as_deref().unwrap_or("*"),
            f.rule.map(|r| r.as_str()).unwrap_or("*"),
            f.service.map(|s| s.as_str()).unwrap_or("*"),
            self.queue.items.len()
        )
    }

    fn render_queue(&self, frame: &mut Frame<'_>, area: Rect) {
        if self.view == View::Approvals {
            return self.render_approvals(frame, area);
        }
        let inner_width = usize::from(area.width.saturating_sub(4));
        let items: Vec<ListItem<'_>> = self
            .queue
            .items
            .iter()
            .map(|i| {
                let mut rule = i
                    .read
                    .flags
                    .iter()
                    .max_by_key(|f| severity(f.rule))
                    .map(|f| f.rule.to_string())
                    .unwrap_or_default();
                let held = i.read.flags.iter().filter(|f| f.rule.holds_for_review()).count();
                if held > 1 {
                    rule = format!("{rule} +{}", held - 1);
                }
                let place = if i.route.is_empty() {
                    "?".to_owned()
                } else {
                    format!("{}/{}", i.route, i.sequence)
                };
                let text = format!("{:<7} {place} {rule}", i.read.read.meter_id);
                ListItem::new(text.chars().take(inner_width).collect::<String>())
            })
            .chain(self.queue.days.iter().map(|d| {
                // A day: meter, channel and date where a read has its route, then its worst flag.
                let mut rule = d.rules.first().map(|r| r.to_string()).unwrap_or_default();
                if d.rules.len() > 1 {
                    rule = format!("{rule} +{}", d.rules.len() - 1);
                }
                let text = format!(
                    "{:<7} {} {} {rule}",
                    d.key.meter_id,
                    d.key.channel,
                    d.key.date.strftime("%m-%d")
                );
                ListItem::new(text.chars().take(inner_width).collect::<String>())
            }))
            .collect();
        let title = format!(" Queue {} ", self.held_len());
        let list = List::new(items)
            .block(Block::default().borders(Borders::ALL).title(title))
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
            .highlight_symbol("▶ ");
        let mut state = ListState::default();
        if !self.pinned && self.held_len() > 0 {
            state.select(Some(self.selected));
        }
        frame.render_stateful_widget(list, area, &mut state);
    }

    /// The approvals queue: meter, the consumption change, who asked.
    fn render_approvals(&self, frame: &mut Frame<'_>, area: Rect) {
        let inner_width = usize::from(area.width.saturating_sub(4));
        let items: Vec<ListItem<'_>> = self
            .approvals
            .iter()
            .map(|a| {
                let text = format!(
                    "{:<7} {} Δ{} {}",
                    a.meter_id,
                    a.action.as_str(),
                    short_number(a.change),
                    a.author
                );
                ListItem::new(text.chars().take(inner_width).collect::<String>())
            })
            .collect();
        let title = format!(" Approvals {} ", self.approvals.len());
        let list = List::new(items)
            .block(Block::default().borders(Borders::ALL).title(title))
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
            .highlight_symbol("▶ ");
        let mut state = ListState::default();
        if !self.pinned && !self.approvals.is_empty() {
            state.select(Some(self.approval_selected));
        }
        frame.render_stateful_widget(list, area, &mut state);
    }

    fn render_detail(&self, frame: &mut Frame<'_>, area: Rect) {
        if let (Some(d), View::Held) = (&self.day, self.view) {
            return render_day(frame, d, area);
        }
        let Some(d) = &self.detail else {
            let empty = match self.view {
                View::Held => "No read held for review with this filter.",
                View::Approvals => "No adjustment awaits approval.",
            };
            let p = Paragraph::new(empty).block(Block::default().borders(Borders::ALL).title(" Read "));
            frame.render_widget(p, area);
            return;
        };
        let title = format!(" Read {} · {} · rev {} ", d.read.id, d.read.status, d.rev);
        let block = Block::default().borders(Borders::ALL).title(title);
        let inner = block.inner(area);
        frame.render_widget(block, area);
        let mut lines = self.approval_shown().map(approval_lines).unwrap_or_default();
        lines.extend(detail_lines(d, usize::from(inner.width)));
        // The chart takes what the text leaves, at least 6 rows (a clerk needs it at a glance).
        let chart_height = inner.height.saturating_sub(lines.len() as u16).max(6).min(inner.height);
        let lines: Vec<Line<'_>> = lines
            .into_iter()
            .take(usize::from(inner.height - chart_height))
            .collect();
        let [text, chart_area] = Layout::vertical([Constraint::Min(1), Constraint::Length(chart_height)]).areas(inner);
        frame.render_widget(Paragraph::new(lines), text);
        let unit = d.meter.as_ref().map(|m| m.unit.as_str()).unwrap_or("");
        let chart_lines: Vec<Line<'_>> = chart(&d.periods, unit, chart_area.width, chart_area.height)
            .into_iter()
            .map(|l| {
                Line::from(
                    l.into_iter()
                        .map(|(s, kind)| {
                            let style = match kind {
                                Cell::Text => Style::new(),
                                Cell::Bar => Style::new().fg(Color::Cyan),
                                Cell::Current => Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
                                Cell::Estimated => Style::new().fg(Color::DarkGray),
                            };
                            Span::styled(s, style)
                        })
                        .collect::<Vec<_>>(),
                )
            })
            .collect();
        frame.render_widget(Paragraph::new(chart_lines), chart_area);
    }
}

/// An interval day: meter, status and total, its flags in words with their numbers, and
/// the day chart in the rows left (at least 8).
fn render_day(frame: &mut Frame<'_>, d: &DayDetail, area: Rect) {
    let day = &d.day;
    let title = format!(" Day {} {} · {} · rev {} ", day.channel, day.date, day.status, day.rev);
    let block = Block::default().borders(Borders::ALL).title(title);
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    let cut = |s: String| s.chars().take(width).collect::<String>();
    let mut lines: Vec<Line<'static>> = Vec::new();
    match &d.meter {
        Some(m) => lines.push(Line::from(vec![
            Span::styled(m.meter_id.clone(), bold()),
            Span::raw(cut(format!(" · {} · acct {} · {}", m.service, m.account, m.route))),
        ])),
        None => lines.push(Line::styled(
            cut(format!("{} (not in the meter list)", day.meter_id)),
            bold(),
        )),
    }
    lines.push(Line::raw(cut(format!(
        "Total {} {} · {}×{} min · {}",
        day.total(),
        d.unit,
        day.values.len(),
        day.interval_minutes,
        d.direction.as_str()
    ))));
    for f in &day.flags {
        let place = if f.intervals.is_empty() {
            String::new()
        } else {
            format!(" · {}", interval_ranges(&f.intervals, day.interval_minutes, 2))
        };
        lines.push(Line::styled(
            cut(format!("⚑ {}{place}", f.rule)),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
        lines.push(Line::raw(cut(format!("  {}", rule_words(f.rule)))));
        let nums: Vec<String> = [("expected", f.expected), ("limit", f.limit), ("actual", f.actual)]
            .into_iter()
            .filter_map(|(n, v)| v.map(|v| format!("{n} {}", short_number(v))))
            .collect();
        if !nums.is_empty() {
            lines.push(Line::raw(cut(format!("  {}", nums.join(" · ")))));
        }
    }
    if let Some(e) = d.audit.last() {
        lines.push(Line::styled(
            cut(format!(
                "{} {} {}: {}",
                e.at.strftime("%m-%d %H:%M"),
                e.clerk,
                e.action.as_str(),
                e.reason
            )),
            Style::new().fg(Color::DarkGray),
        ));
    }
    let chart_height = inner.height.saturating_sub(lines.len() as u16).max(8).min(inner.height);
    let lines: Vec<Line<'_>> = lines
        .into_iter()
        .take(usize::from(inner.height - chart_height))
        .collect();
    let [text, chart_area] = Layout::vertical([Constraint::Min(0), Constraint::Length(chart_height)]).areas(inner);
    frame.render_widget(Paragraph::new(lines), text);
    let chart_lines: Vec<Line<'_>> = day_chart(day, &d.like_day, &d.unit, chart_area.width, chart_area.height)
        .into_iter()
        .map(|l| {
            Line::from(
                l.into_iter()
                    .map(|(s, kind)| {
                        let style = match kind {
                            DayCell::Text => Style::new(),
                            DayCell::Actual => Style::new().fg(Color::Cyan),
                            DayCell::Estimated | DayCell::Missing => Style::new().fg(Color::DarkGray),
                            DayCell::Edited => Style::new().fg(Color::Magenta),
                            DayCell::Flagged => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
                            DayCell::Average => Style::new().fg(Color::Yellow),
                        };
                        Span::styled(s, style)
                    })
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    frame.render_widget(Paragraph::new(chart_lines), chart_area);
}

/// What a supervisor decides on: the adjustment, who asked and why, the change.
fn approval_lines(a: &ApprovalItem) -> Vec<Line<'static>> {
    let opt = |q: Option<crate::model::Quantity>| q.map(short_number).unwrap_or_else(|| "-".into());
    vec![
        Line::styled(
            format!(
                "Awaits approval: {} by {} {}",
                a.action.as_str(),
                a.author,
                a.at.strftime("%m-%d %H:%M")
            ),
            Style::new().fg(Color::Yellow).add_modifier(Modifier::BOLD),
        ),
        // Short lines: the pane does not wrap (the chart gets the rows left).
        Line::raw(format!("Value {} → {}", a.old_value, a.value)),
        Line::raw(format!(
            "Use {} → {} · change {}",
            opt(a.old_consumption),
            opt(a.consumption),
            short_number(a.change)
        )),
        Line::raw(format!("Why: {}", a.reason)),
    ]
}

/// The detail text: meter, location, the read, its flags with their numbers, notes.
fn detail_lines(d: &ReadDetail, width: usize) -> Vec<Line<'static>> {
    let r = &d.read;
    let mut lines = Vec::new();
    // Short lines (no wrapping): the chart below gets exactly the rows left.
    match &d.meter {
        Some(m) => {
            lines.push(Line::from(vec![
                Span::styled(m.meter_id.clone(), bold()),
                Span::raw(format!(" · {} · {} dials · acct {}", m.service, m.dials, m.account)),
            ]));
            lines.push(Line::raw(format!("Route {} #{} · {}", m.route, m.sequence, m.address)));
            if !m.notes.is_empty() {
                lines.push(Line::raw(format!("Notes: {}", m.notes)));
            }
        }
        None => lines.push(Line::styled(
            format!("{} (meter not in the store)", r.read.meter_id),
            bold(),
        )),
    }
    let unit = d.meter.as_ref().map(|m| m.unit.as_str()).unwrap_or("");
    lines.push(Line::from(vec![
        Span::styled(format!("Read {} {unit}", r.read.value), bold()),
        Span::raw(format!(
            " · {} · {}",
            r.read.read_at.strftime("%Y-%m-%d %H:%M"),
            r.read.read_type.as_str()
        )),
    ]));
    let codes = if r.read.codes.is_empty() {
        String::new()
    } else {
        format!(" · codes {}", r.read.codes.join(" "))
    };
    lines.push(Line::raw(format!(
        "raw {} · use {}{codes}",
        r.read.raw,
        r.consumption
            .map(|c| format!("{c} {unit}"))
            .unwrap_or_else(|| "-".into()),
    )));
    for f in &r.flags {
        let nums: Vec<String> = f.numbers().map(|(n, v)| format!("{n} {}", short_number(v))).collect();
        lines.push(Line::styled(
            format!("⚑ {}", f.rule),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
        // The numbers, wrapped at the pane's width between items.
        let mut line = String::new();
        for n in nums {
            if !line.is_empty() && line.chars().count() + 3 + n.chars().count() > width {
                lines.push(Line::raw(std::mem::take(&mut line)));
            }
            line = if line.is_empty() {
                format!("  {n}")
            } else {
                format!("{line} · {n}")
            };
        }
        if !line.is_empty() {
            lines.push(Line::raw(line));
        }
    }
    if let Some(c) = &d.correction {
        let billed = |f: fn(&crate::model::billing::Billed) -> String| c.billed.as_ref().map_or("-".into(), f);
        lines.push(Line::raw(format!(
            "Correction: billed {} in batch {}",
            billed(|b| b.value.to_string()),
            billed(|b| b.batch.to_string())
        )));
    }
    for o in &d.orders {
        lines.push(Line::raw(format!(
            "Order {} {} due {}: {}",
            o.id,
            o.status.as_str(),
            o.due,
            o.reason
        )));
    }
    for e in d.audit.iter().rev().take(2).collect::<Vec<_>>().into_iter().rev() {
        lines.push(Line::styled(
            format!(
                "{} {} {}: {}",
                e.at.strftime("%m-%d %H:%M"),
                e.clerk,
                e.action.as_str(),
                e.reason
            ),
            Style::new().fg(Color::DarkGray),
        ));
    }
    lines
}

/// A number for the screen: at most one decimal (the flag's exact value is in `review show`).
fn short_number(q: crate::model::Quantity) -> String {
    let tenths = q.mul_div(1, 100_000).map_or(0, |t| t.micros());
    if tenths % 10 == 0 {
        format!("{}", tenths / 10)
    } else {
        format!(
            "{}{}.{}",
            if tenths < 0 { "-" } else { "" },
            (tenths / 10).abs(),
            (tenths % 10).abs()
        )
    }
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let w = width.min(area.width);
    let h = height.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

fn render_dialog(frame: &mut Frame<'_>, d: &Dialog, area: Rect) {
    let (title, intro): (&str, Vec<String>) = match &d.kind {
        DialogKind::Edit => (
            "Edit value",
            vec!["The original value stays in the audit trail.".into()],
        ),
        DialogKind::Estimate(p) => (
            "Estimate",
            vec![
                format!(
                    "ADU {} = {} over {} days (rounded to 2 decimals)",
                    p.adu, p.history_usage, p.history_days
                ),
                format!(
                    "× {} days = {} (rounded); ÷ constant → {}",
                    p.days, p.usage, p.register_units
                ),
                format!(
                    "Estimated read {} + {} = {}",
                    p.previous_value, p.register_units, p.value
                ),
                if p.prior_estimates > 0 {
                    format!("{} estimate(s) in a row before this one", p.prior_estimates)
                } else {
                    String::new()
                },
            ],
        ),
        DialogKind::Reject => (
            "Reject and send a reader",
            vec!["Creates a re-read service order for the meter.".into()],
        ),
        DialogKind::Note => ("Add a note", vec![]),
        DialogKind::Filter => (
            "Filter the queue",
            vec!["Empty shows all. Rules: high_usage, zero_usage, …".into()],
        ),
        DialogKind::EditDay => (
            "Edit intervals",
            vec![
                "Interval = value, e.g. 19=1.2, 20-21=0.5 (numbers as the flags name them).".into(),
                "The day becomes edited; old values stay in the audit trail.".into(),
            ],
        ),
        DialogKind::EstimateDay => (
            "Estimate the day again",
            vec!["VEE and estimation run again with the like days and register reads stored now.".into()],
        ),
        DialogKind::RejectDay => ("Reject the day", vec!["The day is not billed.".into()]),
        DialogKind::Approve(a) => (
            "Approve the adjustment",
            vec![
                adjustment_text(a),
                "It becomes billable. The note (optional) is audited.".into(),
            ],
        ),
        DialogKind::Decline(a) => (
            "Decline the adjustment",
            vec![
                adjustment_text(a),
                // Short enough not to wrap in 80 columns (the dialog is sized by lines).
                format!("Back to {}, held for review, with your reason.", a.old_value),
            ],
        ),
    };
    let mut lines: Vec<Line<'_>> = intro.into_iter().filter(|s| !s.is_empty()).map(Line::raw).collect();
    lines.push(Line::raw(""));
    for (i, f) in d.fields.iter().enumerate() {
        let focus = i == d.focus;
        let cursor = if focus { "█" } else { "" };
        let style = if focus {
            Style::new().add_modifier(Modifier::REVERSED)
        } else {
            Style::new()
        };
        lines.push(Line::from(vec![
            Span::styled(format!("{:>8}: ", f.label), bold()),
            Span::styled(format!("{}{cursor}", f.text), style),
        ]));
    }
    lines.push(Line::raw(""));
    if let Some(e) = &d.error {
        lines.push(Line::styled(
            e.clone(),
            Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        ));
    }
    lines.push(Line::styled(
        "Enter confirm · Tab next field · Esc cancel",
        Style::new().fg(Color::DarkGray),
    ));
    let width = area.width.saturating_sub(4).min(64);
    // Rows after wrapping: a long line (large values, a long refusal) must not push the
    // error and the keys out of the box.
    let inner = usize::from(width.saturating_sub(2)).max(1);
    let rows: usize = lines
        .iter()
        .map(|l| {
            let text: String = l.spans.iter().map(|s| s.content.as_ref()).collect();
            wrapped_rows(&text, inner)
        })
        .sum();
    let rect = centered(area, width, u16::try_from(rows + 2).unwrap_or(u16::MAX));
    frame.render_widget(Clear, rect);
    let p = Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::default().borders(Borders::ALL).title(format!(" {title} ")));
    frame.render_widget(p, rect);
}

/// "edit by ann: 14220 → 13608, use 912 → 300 (change 612)".
fn adjustment_text(a: &ApprovalItem) -> String {
    let opt = |q: Option<crate::model::Quantity>| q.map(short_number).unwrap_or_else(|| "-".into());
    format!(
        "{} by {}: {} → {}, use {} → {} (change {})",
        a.action.as_str(),
        a.author,
        a.old_value,
        a.value,
        opt(a.old_consumption),
        opt(a.consumption),
        short_number(a.change)
    )
}

/// How many rows `text` takes when wrapped at word boundaries to `width` columns (as the
/// dialog's paragraph wraps it; a word longer than the width is broken).
fn wrapped_rows(text: &str, width: usize) -> usize {
    let width = width.max(1);
    let (mut rows, mut col) = (1, 0);
    for word in text.split(' ') {
        let w = word.chars().count();
        if col == 0 {
            col = w;
        } else if col + 1 + w <= width {
            col += 1 + w;
        } else {
            rows += 1;
            col = w;
        }
        while col > width {
            rows += 1;
            col -= width;
        }
    }
    rows
}

/// The customer's view of the day's meter over the screen: what `report usage` prints.
fn render_usage(frame: &mut Frame<'_>, area: Rect, lines: &[String], top: u16) {
    let rect = centered(
        area,
        area.width.saturating_sub(2).min(78),
        area.height.saturating_sub(2),
    );
    let shown: Vec<Line<'_>> = lines.iter().map(|l| Line::raw(l.as_str())).collect();
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(shown).scroll((top, 0)).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" Usage · ↑↓ PgUp PgDn scroll · any other key closes "),
        ),
        rect,
    );
}

fn render_help(frame: &mut Frame<'_>, area: Rect) {
    let mut lines: Vec<Line<'_>> = KEYS
        .iter()
        .map(|(k, what)| Line::from(vec![Span::styled(format!("{k:>14}  "), bold()), Span::raw(*what)]))
        .collect();
    lines.push(Line::raw(""));
    lines.push(Line::raw("Every action is also a command:"));
    lines.push(Line::raw(
        "  meterd review accept|edit|estimate|reject|note|undo ID --rev N",
    ));
    lines.push(Line::raw(
        "  meterd review accept-day|edit-day|estimate-day|reject-day M CHAN DATE",
    ));
    let rect = centered(area, area.width.saturating_sub(2).min(90), lines.len() as u16 + 2);
    frame.render_widget(Clear, rect);
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" Keys ")),
        rect,
    );
}

#[cfg(test)]
mod tests {
    use super::wrapped_rows;

    #[test]
    fn wrapped_rows_counts_word_wrapped_rows() {
        assert_eq!(wrapped_rows("", 10), 1);
        assert_eq!(wrapped_rows("short", 10), 1);
        assert_eq!(wrapped_rows("0123456789", 10), 1);
        assert_eq!(wrapped_rows("01234 6789 abc", 10), 2);
        assert_eq!(wrapped_rows("0123456789abcdefghijk", 10), 3);
        assert_eq!(wrapped_rows("x", 0), 1);
    }
}
