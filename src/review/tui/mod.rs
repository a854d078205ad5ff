//! `meterd review`: the clerks' terminal UI.
//!
//! [`App`] is plain data: [`App::on_key`] changes it (calling the [`ReviewBackend`] for data
//! and actions), [`App::render`] draws it. Tests drive both with ratatui's `TestBackend`;
//! [`run`] connects them to a real terminal (crossterm, no mouse).
//!
//! Two lists share the screen: the held queue (clerks) and, behind `p`, the approvals queue
//! (supervisors: `a` approves, `d` declines an adjustment awaiting four-eyes approval). The
//! held queue lists the held reads, then the held interval days; on a day the same keys act
//! on the day (`a` accept, `e` edit intervals, `s` estimate again, `r` reject) and the detail
//! pane shows its day chart.

mod render;
mod term;

use jiff::civil::Date;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

pub use render::{APPROVALS_HELP_LINE, DAY_HELP_LINE, HELP_LINE};
pub use term::run;

use super::{
    Action, ActionRequest, ApprovalItem, DayAction, DayActionRequest, DayDetail, EstimatePreview, QueueFilter,
    QueueView, ReadDetail, ReviewBackend, ReviewError,
};
use crate::model::interval::DayKey;
use crate::model::{AuditAction, Quantity, ReadId, Rule, Service};

/// Days until a re-read service order is due, by default.
pub const DEFAULT_DUE_DAYS: i64 = 3;

/// A one-line text input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Field {
    pub label: &'static str,
    pub text: String,
}

impl Field {
    fn new(label: &'static str, text: impl Into<String>) -> Self {
        Field {
            label,
            text: text.into(),
        }
    }

    fn key(&mut self, key: &KeyEvent) {
        match key.code {
            KeyCode::Char(c) if !key.modifiers.contains(KeyModifiers::CONTROL) => self.text.push(c),
            KeyCode::Backspace => {
                self.text.pop();
            }
            _ => {}
        }
    }
}

/// Which dialog is open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DialogKind {
    /// Value + reason.
    Edit,
    /// Confirm the estimate shown.
    Estimate(EstimatePreview),
    /// Reason + due date of the re-read service order.
    Reject,
    Note,
    /// Route, rule and service filters.
    Filter,
    /// Approve the adjustment shown (an optional note).
    Approve(ApprovalItem),
    /// Decline it (a reason).
    Decline(ApprovalItem),
    /// Interval values (`19=1.2, 20-21=0.5`) + reason, for the interval day shown.
    EditDay,
    /// Run VEE and estimation on the day shown again (an optional reason).
    EstimateDay,
    /// Reject the day shown (a reason).
    RejectDay,
}

/// Which list the left pane shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum View {
    /// The reads held for review (`flagged`).
    #[default]
    Held,
    /// The adjustments awaiting a supervisor's approval (`pending_approval`).
    Approvals,
}

/// An open dialog: its fields, which one has focus, and why the last submit was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialog {
    pub kind: DialogKind,
    pub fields: Vec<Field>,
    pub focus: usize,
    pub error: Option<String>,
}

/// The whole UI state.
#[derive(Debug, Clone)]
pub struct App {
    pub clerk: String,
    pub filter: QueueFilter,
    pub queue: QueueView,
    /// Index into `queue.items`.
    pub selected: usize,
    pub view: View,
    /// The approvals queue (loaded with the held queue: the header counts it).
    pub approvals: Vec<ApprovalItem>,
    /// Index into `approvals`.
    pub approval_selected: usize,
    /// The read shown in the detail pane (the selected one, or the one just acted on).
    pub detail: Option<ReadDetail>,
    /// The interval day shown instead, when the held queue's selection is a day.
    pub day: Option<DayDetail>,
    /// The read just acted on stays on screen until the clerk moves.
    pub pinned: bool,
    /// This clerk changed the pinned read: `u` undoes that change.
    pub can_undo: bool,
    pub dialog: Option<Dialog>,
    pub help: bool,
    /// The usage view of the day's meter (`U`), scrolled by this many lines.
    pub usage: Option<u16>,
    /// The last message (action done, refusal) and whether it is an error.
    pub message: Option<(String, bool)>,
    /// Why there is no queue to show (the daemon cannot be reached or refused the user, the
    /// store cannot be opened): the body says so instead of showing an empty queue.
    pub unavailable: Option<String>,
    pub today: Date,
    pub quit: bool,
}

impl App {
    pub fn new(clerk: String, filter: QueueFilter, today: Date) -> Self {
        App {
            clerk,
            filter,
            queue: QueueView::default(),
            selected: 0,
            view: View::Held,
            approvals: Vec::new(),
            approval_selected: 0,
            detail: None,
            day: None,
            pinned: false,
            can_undo: false,
            dialog: None,
            help: false,
            usage: None,
            message: None,
            unavailable: None,
            today,
            quit: false,
        }
    }

    /// Reload the queues and the read on screen. The read the clerk has open stays open: it
    /// keeps its selection when reads come or go above it, and when it left the list (another
    /// clerk acted on it) it stays on screen, as after the clerk's own action.
    pub fn refresh(&mut self, backend: &dyn ReviewBackend) {
        let open = self.detail.as_ref().map(|d| d.read.id);
        let open_day = self.day.as_ref().map(|d| d.day.key());
        let loaded = backend.queue(&self.filter).and_then(|q| Ok((q, backend.approvals()?)));
        match loaded {
            Ok((q, a)) => {
                self.queue = q;
                self.approvals = a;
                self.unavailable = None;
            }
            Err(e) => {
                self.queue = QueueView::default();
                self.approvals = Vec::new();
                self.detail = None;
                self.day = None;
                self.pinned = false;
                self.can_undo = false;
                self.unavailable = Some(e.to_string());
                return;
            }
        }
        if !self.pinned
            && let Some(id) = open
        {
            let at = match self.view {
                View::Held => self.queue.items.iter().position(|i| i.read.id == id),
                View::Approvals => self.approvals.iter().position(|a| a.read_id == id),
            };
            match at {
                Some(i) => self.set_cursor(i),
                None => {
                    self.pinned = true;
                    self.can_undo = false;
                }
            }
        }
        if !self.pinned
            && let Some(key) = &open_day
        {
            match self.queue.days.iter().position(|d| &d.key == key) {
                Some(i) if self.view == View::Held => self.selected = self.queue.items.len() + i,
                _ => {
                    self.pinned = true;
                    self.can_undo = false;
                }
            }
        }
        let held = self.held_len();
        if self.selected >= held {
            self.selected = held.saturating_sub(1);
        }
        if self.approval_selected >= self.approvals.len() {
            self.approval_selected = self.approvals.len().saturating_sub(1);
        }
        match (self.pinned, open, open_day) {
            (true, Some(id), _) => self.load(backend, id),
            (true, _, Some(key)) => self.load_day(backend, &key),
            _ => self.load_selected(backend),
        }
    }

    /// Reads and days in the held queue.
    pub(super) fn held_len(&self) -> usize {
        self.queue.items.len() + self.queue.days.len()
    }

    /// The interval day under the held queue's cursor, if the cursor is past the reads.
    fn selected_day(&self) -> Option<&DayKey> {
        let i = self.selected.checked_sub(self.queue.items.len())?;
        self.queue.days.get(i).map(|d| &d.key)
    }

    /// Whether the screen shows why there is no queue.
    pub fn is_unavailable(&self) -> bool {
        self.unavailable.is_some()
    }

    /// How many reads the list on screen has.
    pub fn list_len(&self) -> usize {
        match self.view {
            View::Held => self.held_len(),
            View::Approvals => self.approvals.len(),
        }
    }

    /// The index of the selected read in the list on screen.
    pub fn cursor(&self) -> usize {
        match self.view {
            View::Held => self.selected,
            View::Approvals => self.approval_selected,
        }
    }

    fn set_cursor(&mut self, index: usize) {
        match self.view {
            View::Held => self.selected = index,
            View::Approvals => self.approval_selected = index,
        }
    }

    /// The approvals queue's entry of the read on screen, in that view.
    pub fn approval_shown(&self) -> Option<&ApprovalItem> {
        let id = self.detail.as_ref()?.read.id;
        (self.view == View::Approvals)
            .then(|| self.approvals.iter().find(|a| a.read_id == id))
            .flatten()
    }

    fn load_selected(&mut self, backend: &dyn ReviewBackend) {
        if self.view == View::Held
            && let Some(key) = self.selected_day().cloned()
        {
            return self.load_day(backend, &key);
        }
        self.day = None;
        let id = match self.view {
            View::Held => self.queue.items.get(self.selected).map(|i| i.read.id),
            View::Approvals => self.approvals.get(self.approval_selected).map(|a| a.read_id),
        };
        match id {
            Some(id) => self.load(backend, id),
            None => self.detail = None,
        }
    }

    fn load(&mut self, backend: &dyn ReviewBackend, id: ReadId) {
        self.day = None;
        match backend.detail(id) {
            Ok(d) => self.detail = Some(d),
            Err(e) => self.error(e),
        }
    }

    fn load_day(&mut self, backend: &dyn ReviewBackend, key: &DayKey) {
        self.detail = None;
        match backend.day_detail(key) {
            Ok(d) => self.day = Some(d),
            Err(e) => {
                self.day = None;
                self.error(e)
            }
        }
    }

    fn error(&mut self, e: ReviewError) {
        self.message = Some((e.to_string(), true));
    }

    fn info(&mut self, m: String) {
        self.message = Some((m, false));
    }

    fn move_to(&mut self, backend: &dyn ReviewBackend, index: usize) {
        if self.list_len() == 0 {
            return;
        }
        if self.pinned {
            // The acted-on read left the queue: the list below it moved up one. The clerk
            // moves on, so it is no longer the read to keep on screen.
            self.pinned = false;
            self.can_undo = false;
            self.detail = None;
            self.day = None;
            self.refresh(backend);
        }
        self.set_cursor(index.min(self.list_len().saturating_sub(1)));
        self.load_selected(backend);
    }

    /// `p`: from the held queue to the approvals queue and back.
    fn switch_view(&mut self, backend: &dyn ReviewBackend) {
        self.view = match self.view {
            View::Held => View::Approvals,
            View::Approvals => View::Held,
        };
        // The other list starts at its selection, not at the read open in this one.
        self.detail = None;
        self.day = None;
        self.pinned = false;
        self.can_undo = false;
        self.refresh(backend);
        let m = match self.view {
            View::Approvals => format!(
                "approvals queue: {} awaiting approval · a approve · d decline · p back",
                self.approvals.len()
            ),
            View::Held => format!("held queue: {} held", self.queue.total),
        };
        self.info(m);
    }

    /// Handle one key.
    pub fn on_key(&mut self, key: KeyEvent, backend: &dyn ReviewBackend) {
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return;
        }
        if self.dialog.is_some() {
            return self.dialog_key(key, backend);
        }
        if self.help {
            self.help = false;
            return;
        }
        if let Some(top) = self.usage {
            // ↑↓ PgUp PgDn scroll the usage view; any other key closes it.
            self.usage = match key.code {
                KeyCode::Down | KeyCode::Char('j') => Some(top.saturating_add(1)),
                KeyCode::Up | KeyCode::Char('k') => Some(top.saturating_sub(1)),
                KeyCode::PageDown => Some(top.saturating_add(10)),
                KeyCode::PageUp => Some(top.saturating_sub(10)),
                _ => None,
            };
            return;
        }
        if self.unavailable.is_some() {
            match key.code {
                KeyCode::Char('q') => self.quit = true,
                KeyCode::Char('r') | KeyCode::Char('g') => self.refresh(backend),
                KeyCode::Char('?') | KeyCode::F(1) => self.help = true,
                _ => {}
            }
            return;
        }
        let n = self.list_len();
        let at = self.cursor();
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') | KeyCode::F(1) => self.help = true,
            KeyCode::Char('U') if self.day.is_some() => self.usage = Some(0),
            KeyCode::Down | KeyCode::Char('j') => {
                let next = if self.pinned { at } else { at + 1 };
                self.move_to(backend, next)
            }
            KeyCode::Up | KeyCode::Char('k') => self.move_to(backend, at.saturating_sub(1)),
            KeyCode::PageDown => self.move_to(backend, at + 10),
            KeyCode::PageUp => self.move_to(backend, at.saturating_sub(10)),
            KeyCode::Home => self.move_to(backend, 0),
            KeyCode::End => self.move_to(backend, n.saturating_sub(1)),
            KeyCode::Char('g') => {
                self.refresh(backend);
                self.info(format!(
                    "reloaded: {} held, {} awaiting approval",
                    self.queue.total,
                    self.approvals.len()
                ));
            }
            KeyCode::Char('p') => self.switch_view(backend),
            KeyCode::Char('e' | 's' | 'r' | 'u' | 'f') if self.view == View::Approvals => {
                self.message = Some((
                    "in the approvals queue: a approve · d decline · n note; p goes back to the held queue".into(),
                    true,
                ));
            }
            KeyCode::Char('f') => {
                let f = &self.filter;
                self.dialog = Some(Dialog {
                    kind: DialogKind::Filter,
                    fields: vec![
                        Field::new("route", f.route.clone().unwrap_or_default()),
                        Field::new("rule", f.rule.map(|r| r.as_str().to_owned()).unwrap_or_default()),
                        Field::new("service", f.service.map(|s| s.as_str().to_owned()).unwrap_or_default()),
                    ],
                    focus: 0,
                    error: None,
                });
            }
            _ if self.day.is_some() && self.view == View::Held => self.day_key(key, backend),
            _ if self.detail.is_none() => {}
            KeyCode::Char('a' | 'd') if self.view == View::Approvals => {
                let Some(item) = self.approval_shown().cloned() else {
                    self.message = Some(("this read no longer awaits approval (g reloads)".into(), true));
                    return;
                };
                if key.code == KeyCode::Char('a') {
                    self.open(DialogKind::Approve(item), vec![Field::new("note", "")]);
                } else {
                    self.open(DialogKind::Decline(item), vec![Field::new("reason", "")]);
                }
            }
            KeyCode::Char('a') => self.submit(backend, Action::Accept { reason: String::new() }),
            KeyCode::Char('e') => {
                let value = self
                    .detail
                    .as_ref()
                    .map(|d| d.read.read.value.to_string())
                    .unwrap_or_default();
                self.open(
                    DialogKind::Edit,
                    vec![Field::new("value", value), Field::new("reason", "")],
                );
            }
            KeyCode::Char('s') => {
                let id = self.detail.as_ref().map(|d| d.read.id).unwrap_or_default();
                match backend.preview_estimate(id) {
                    Ok(p) => self.open(DialogKind::Estimate(p), vec![Field::new("reason", "")]),
                    Err(e) => self.error(e),
                }
            }
            KeyCode::Char('r') => {
                let due = self
                    .today
                    .checked_add(jiff::Span::new().days(DEFAULT_DUE_DAYS))
                    .unwrap_or(self.today);
                self.open(
                    DialogKind::Reject,
                    vec![Field::new("reason", ""), Field::new("due", due.to_string())],
                );
            }
            KeyCode::Char('n') => self.open(DialogKind::Note, vec![Field::new("note", "")]),
            KeyCode::Char('u') => {
                if !self.can_undo {
                    self.message = Some((
                        "undo works on the read you just changed, before you move on".into(),
                        true,
                    ));
                } else {
                    self.submit(backend, Action::Undo);
                }
            }
            _ => {}
        }
    }

    /// A key on an interval day: the read keys, for the day.
    fn day_key(&mut self, key: KeyEvent, backend: &dyn ReviewBackend) {
        match key.code {
            KeyCode::Char('a') => self.submit_day(backend, DayAction::Accept { reason: String::new() }),
            KeyCode::Char('e') => {
                // Start from the first flagged interval's value: the one a clerk most often fixes.
                let start = self
                    .day
                    .as_ref()
                    .and_then(|d| {
                        let n = d
                            .day
                            .flags
                            .iter()
                            .find(|f| f.rule.holds_day())?
                            .intervals
                            .first()
                            .copied()?;
                        let v = d.day.values.get(usize::from(n).checked_sub(1)?).copied().flatten()?;
                        Some(format!("{n}={v}"))
                    })
                    .unwrap_or_default();
                self.open(
                    DialogKind::EditDay,
                    vec![Field::new("intervals", start), Field::new("reason", "")],
                );
            }
            KeyCode::Char('s') => self.open(DialogKind::EstimateDay, vec![Field::new("reason", "")]),
            KeyCode::Char('r') => self.open(DialogKind::RejectDay, vec![Field::new("reason", "")]),
            KeyCode::Char('n' | 'u') => {
                self.message = Some((
                    "interval days have no notes or undo: a edit s re-estimate r reject".into(),
                    true,
                ));
            }
            _ => {}
        }
    }

    /// Send a day action with the day's revision on screen; on success keep the day on screen.
    fn submit_day(&mut self, backend: &dyn ReviewBackend, action: DayAction) {
        let Some(d) = &self.day else { return };
        let req = DayActionRequest {
            key: d.day.key(),
            seen_rev: Some(d.day.rev),
            clerk: self.clerk.clone(),
            action,
        };
        match backend.act_on_day(&req) {
            Ok(outcome) => {
                let mut msg = outcome.summary();
                for w in &outcome.warnings {
                    msg.push_str(&format!(" · {w}"));
                }
                self.dialog = None;
                self.pinned = true;
                self.can_undo = false;
                self.refresh(backend);
                self.load_day(backend, &req.key);
                self.info(msg);
            }
            Err(e) => {
                let conflict = e.is_conflict();
                self.error(e);
                if conflict {
                    // Show the day as it is now.
                    self.dialog = None;
                    let msg = self.message.clone();
                    self.refresh(backend);
                    self.load_day(backend, &req.key);
                    self.pinned = true;
                    self.message = msg;
                }
            }
        }
    }

    fn open(&mut self, kind: DialogKind, fields: Vec<Field>) {
        self.dialog = Some(Dialog {
            kind,
            fields,
            focus: 0,
            error: None,
        });
    }

    fn dialog_key(&mut self, key: KeyEvent, backend: &dyn ReviewBackend) {
        let Some(d) = self.dialog.as_mut() else { return };
        match key.code {
            KeyCode::Esc => self.dialog = None,
            KeyCode::Tab | KeyCode::Down => d.focus = (d.focus + 1) % d.fields.len().max(1),
            KeyCode::BackTab | KeyCode::Up => d.focus = (d.focus + d.fields.len().max(1) - 1) % d.fields.len().max(1),
            KeyCode::Enter => self.confirm_dialog(backend),
            _ => {
                if let Some(f) = d.fields.get_mut(d.focus) {
                    f.key(&key);
                }
            }
        }
    }

    fn confirm_dialog(&mut self, backend: &dyn ReviewBackend) {
        let Some(d) = self.dialog.clone() else { return };
        let text = |i: usize| d.fields.get(i).map(|f| f.text.trim().to_owned()).unwrap_or_default();
        let action = match &d.kind {
            DialogKind::Filter => {
                let rule = text(1);
                let service = text(2);
                let rule = if rule.is_empty() {
                    None
                } else {
                    match Rule::parse(&rule) {
                        Some(r) => Some(r),
                        None => return self.dialog_error(format!("no rule {rule:?}")),
                    }
                };
                let service = if service.is_empty() {
                    None
                } else {
                    match Service::parse(&service) {
                        Some(s) => Some(s),
                        None => return self.dialog_error(format!("no service {service:?} (water, gas, electric)")),
                    }
                };
                let route = Some(text(0)).filter(|r| !r.is_empty());
                self.filter = QueueFilter { route, rule, service };
                self.dialog = None;
                // A new filter starts at its first read.
                self.detail = None;
                self.day = None;
                self.pinned = false;
                self.can_undo = false;
                self.selected = 0;
                self.refresh(backend);
                return;
            }
            DialogKind::Edit => {
                let value = match Quantity::parse(&text(0)) {
                    Ok(v) => v,
                    Err(e) => return self.dialog_error(format!("value: {e}")),
                };
                if text(1).is_empty() {
                    return self.dialog_error("a reason is required".into());
                }
                Action::Edit { value, reason: text(1) }
            }
            DialogKind::Estimate(_) => Action::Estimate { reason: text(0) },
            DialogKind::Reject => {
                if text(0).is_empty() {
                    return self.dialog_error("a reason is required".into());
                }
                let due: Date = match text(1).parse() {
                    Ok(d) => d,
                    Err(_) => return self.dialog_error(format!("due date {:?} is not YYYY-MM-DD", text(1))),
                };
                Action::Reject { reason: text(0), due }
            }
            DialogKind::Note => {
                if text(0).is_empty() {
                    return self.dialog_error("the note is empty".into());
                }
                Action::Note { text: text(0) }
            }
            DialogKind::EditDay | DialogKind::EstimateDay | DialogKind::RejectDay => {
                let action = match &d.kind {
                    DialogKind::EditDay => {
                        let values = match super::parse_interval_values(&text(0)) {
                            Ok(v) => v,
                            Err(e) => return self.dialog_error(e),
                        };
                        if text(1).is_empty() {
                            return self.dialog_error("a reason is required".into());
                        }
                        DayAction::Edit {
                            values,
                            reason: text(1),
                        }
                    }
                    DialogKind::RejectDay => {
                        if text(0).is_empty() {
                            return self.dialog_error("a reason is required".into());
                        }
                        DayAction::Reject { reason: text(0) }
                    }
                    _ => DayAction::Estimate { reason: text(0) },
                };
                self.submit_day(backend, action);
                if let Some((m, true)) = &self.message
                    && let Some(d) = self.dialog.as_mut()
                {
                    d.error = Some(m.clone());
                }
                return;
            }
            DialogKind::Approve(_) => Action::Approve { note: text(0) },
            DialogKind::Decline(_) => {
                if text(0).is_empty() {
                    return self.dialog_error("a reason is required".into());
                }
                Action::Decline { reason: text(0) }
            }
        };
        self.submit(backend, action);
        // A refused action keeps the dialog open with the reason, unless the read changed.
        if let Some((m, true)) = &self.message
            && let Some(d) = self.dialog.as_mut()
        {
            d.error = Some(m.clone());
        }
    }

    fn dialog_error(&mut self, e: String) {
        if let Some(d) = self.dialog.as_mut() {
            d.error = Some(e);
        }
    }

    /// Send an action with the revision on screen; on success keep the read on screen.
    fn submit(&mut self, backend: &dyn ReviewBackend, action: Action) {
        let Some(detail) = &self.detail else { return };
        let req = ActionRequest {
            read_id: detail.read.id,
            seen_rev: Some(detail.rev),
            clerk: self.clerk.clone(),
            action,
        };
        match backend.act(&req) {
            Ok(outcome) => {
                let mut msg = outcome.summary();
                for w in &outcome.warnings {
                    msg.push_str(&format!(" · {w}"));
                }
                self.dialog = None;
                self.pinned = true;
                // Approve and decline are not undone (see `Action::Undo`).
                self.can_undo = outcome.entry.action.changes_read()
                    && !matches!(
                        outcome.entry.action,
                        AuditAction::Undo | AuditAction::Approve | AuditAction::Decline
                    );
                let id = req.read_id;
                self.refresh(backend);
                self.load(backend, id);
                self.info(msg);
            }
            Err(e) => {
                let conflict = e.is_conflict();
                self.error(e);
                if conflict {
                    // Show what the other clerk did.
                    self.dialog = None;
                    let msg = self.message.clone();
                    self.refresh(backend);
                    self.load(backend, req.read_id);
                    self.pinned = true;
                    self.can_undo = false;
                    self.message = msg;
                }
            }
        }
    }
}
