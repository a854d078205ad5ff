//! The review UI driven by keys over a real store, drawn on ratatui's TestBackend:
//! committed snapshots of the main screens, and the store after the actions.

use crate::review_fixture::*;
use jiff::civil::date;
use meterd::model::{ReadStatus, Rule};
use meterd::review::tui::{App, View};
use meterd::review::{LocalBackend, QueueFilter, ReviewBackend};
use meterd::vee::VeeConfig;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

struct Rig {
    _dir: tempfile::TempDir,
    backend: LocalBackend,
}

fn rig() -> Rig {
    rig_with(VeeConfig::default())
}

fn rig_with(vee: VeeConfig) -> Rig {
    let dir = tempfile::tempdir().unwrap();
    drop(town(dir.path()));
    let mut backend = LocalBackend::new(dir.path().to_owned(), vee);
    backend.now = fixed_now;
    Rig { _dir: dir, backend }
}

fn app(rig: &Rig, clerk: &str) -> App {
    let mut app = App::new(clerk.into(), QueueFilter::default(), date(2026, 1, 10));
    app.refresh(&rig.backend);
    app
}

fn key(app: &mut App, rig: &Rig, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE), &rig.backend);
}

fn typ(app: &mut App, rig: &Rig, text: &str) {
    for c in text.chars() {
        key(app, rig, KeyCode::Char(c));
    }
}

fn draw(app: &App, w: u16, h: u16) -> Terminal<TestBackend> {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| app.render(f)).unwrap();
    t
}

#[test]
fn queue_and_detail_at_80x24_and_larger() {
    let rig = rig();
    let app = app(&rig, "ann");
    // Severity first: the negative read, then the spike, then the stopped meter.
    let meters: Vec<&str> = app.queue.items.iter().map(|i| i.read.read.meter_id.as_str()).collect();
    assert_eq!(meters, ["E-300", "W-100", "G-200"]);
    insta::assert_snapshot!("queue_80x24", draw(&app, 80, 24).backend());
    let mut app = app;
    key(&mut app, &rig, KeyCode::Down);
    insta::assert_snapshot!("spike_80x24", draw(&app, 80, 24).backend());
    insta::assert_snapshot!("spike_132x40", draw(&app, 132, 40).backend());
}

#[test]
fn the_read_under_review_is_highlighted_in_the_chart() {
    let rig = rig();
    let mut app = app(&rig, "ann");
    key(&mut app, &rig, KeyCode::Down);
    let t = draw(&app, 80, 24);
    let buf = t.backend().buffer();
    let cells: Vec<_> = buf.content().iter().filter(|c| c.symbol() == "▓").collect();
    assert!(cells.len() > 5, "the spike is drawn tall");
    assert!(
        cells.iter().all(|c| c.fg == ratatui::style::Color::Yellow),
        "in the highlight colour"
    );
}

#[test]
fn edit_dialog_requires_a_reason_then_edits_and_undo_restores() {
    let rig = rig();
    let mut app = app(&rig, "ann");
    key(&mut app, &rig, KeyCode::Down); // W-100, the spike
    let id = app.detail.as_ref().unwrap().read.id;
    key(&mut app, &rig, KeyCode::Char('e'));
    for _ in 0..5 {
        key(&mut app, &rig, KeyCode::Backspace);
    }
    typ(&mut app, &rig, "13608");
    insta::assert_snapshot!("edit_dialog", draw(&app, 80, 24).backend());
    key(&mut app, &rig, KeyCode::Enter);
    assert_eq!(
        app.dialog.as_ref().unwrap().error.as_deref(),
        Some("a reason is required")
    );
    key(&mut app, &rig, KeyCode::Tab);
    typ(&mut app, &rig, "keyed 9 for 6");
    key(&mut app, &rig, KeyCode::Enter);
    assert!(app.dialog.is_none(), "{:?}", app.message);
    insta::assert_snapshot!("after_edit", draw(&app, 80, 24).backend());

    let d = rig.backend.detail(id).unwrap();
    assert_eq!((d.read.read.value, d.read.status), (q("13608"), ReadStatus::Edited));
    assert_eq!(d.read.consumption, Some(q("300")));
    assert_eq!(d.audit.len(), 1);
    assert_eq!(
        (
            d.audit[0].clerk.as_str(),
            d.audit[0].old_value,
            d.audit[0].reason.as_str()
        ),
        ("ann", q("14220"), "keyed 9 for 6")
    );

    key(&mut app, &rig, KeyCode::Char('u'));
    let d = rig.backend.detail(id).unwrap();
    assert_eq!((d.read.read.value, d.read.status), (q("14220"), ReadStatus::Flagged));
    assert!(d.read.has_flag(Rule::HighUsage));
    // Moving on ends undo.
    key(&mut app, &rig, KeyCode::Down);
    key(&mut app, &rig, KeyCode::Char('u'));
    assert!(
        app.message.as_ref().unwrap().1,
        "undo refused after moving: {:?}",
        app.message
    );
}

#[test]
fn estimate_reject_note_filter_and_help_screens() {
    let rig = rig();
    let mut app = app(&rig, "ann");
    // G-200 stopped: estimate from the year of 50 a month.
    key(&mut app, &rig, KeyCode::End);
    assert_eq!(app.detail.as_ref().unwrap().read.read.meter_id, "G-200");
    key(&mut app, &rig, KeyCode::Char('s'));
    insta::assert_snapshot!("estimate_dialog", draw(&app, 80, 24).backend());
    key(&mut app, &rig, KeyCode::Esc);
    key(&mut app, &rig, KeyCode::Char('r'));
    typ(&mut app, &rig, "dial fogged");
    insta::assert_snapshot!("reject_dialog", draw(&app, 80, 24).backend());
    key(&mut app, &rig, KeyCode::Esc);
    key(&mut app, &rig, KeyCode::Char('n'));
    typ(&mut app, &rig, "called customer");
    insta::assert_snapshot!("note_dialog", draw(&app, 80, 24).backend());
    key(&mut app, &rig, KeyCode::Esc);
    key(&mut app, &rig, KeyCode::Char('f'));
    typ(&mut app, &rig, "R01");
    insta::assert_snapshot!("filter_dialog", draw(&app, 80, 24).backend());
    key(&mut app, &rig, KeyCode::Enter);
    let meters: Vec<&str> = app.queue.items.iter().map(|i| i.read.read.meter_id.as_str()).collect();
    assert_eq!(meters, ["E-300", "W-100"]);
    key(&mut app, &rig, KeyCode::Char('?'));
    insta::assert_snapshot!("help", draw(&app, 80, 24).backend());
    key(&mut app, &rig, KeyCode::Char('x'));
    assert!(!app.help);
}

#[test]
fn estimate_and_reject_through_the_keys() {
    let rig = rig();
    let mut app = app(&rig, "ann");
    key(&mut app, &rig, KeyCode::End);
    let g = app.detail.as_ref().unwrap().read.id;
    key(&mut app, &rig, KeyCode::Char('s'));
    key(&mut app, &rig, KeyCode::Enter);
    let d = rig.backend.detail(g).unwrap();
    // 50 a month over the year: ADU and days from the calendar; the value moved on.
    assert_eq!(d.read.status, ReadStatus::Estimated);
    assert!(d.read.read.value > q("2550"), "{}", d.read.read.value);

    key(&mut app, &rig, KeyCode::Home);
    let e = app.detail.as_ref().unwrap().read.id;
    key(&mut app, &rig, KeyCode::Char('r'));
    typ(&mut app, &rig, "read below previous");
    key(&mut app, &rig, KeyCode::Enter);
    let d = rig.backend.detail(e).unwrap();
    assert_eq!(d.read.status, ReadStatus::Rejected);
    assert_eq!(d.orders.len(), 1);
    assert_eq!(
        (d.orders[0].meter_id.as_str(), d.orders[0].due),
        ("E-300", date(2026, 1, 13))
    );
    assert_eq!(d.orders[0].address, "20 Oak St");
}

#[test]
fn two_clerks_the_second_is_refused_and_sees_who() {
    let rig = rig();
    let mut ann = app(&rig, "ann");
    let mut bob = app(&rig, "bob");
    key(&mut ann, &rig, KeyCode::Down);
    key(&mut bob, &rig, KeyCode::Down);
    let id = ann.detail.as_ref().unwrap().read.id;
    key(&mut ann, &rig, KeyCode::Char('a'));
    assert!(!ann.message.as_ref().unwrap().1, "{:?}", ann.message);
    key(&mut bob, &rig, KeyCode::Char('e'));
    key(&mut bob, &rig, KeyCode::Tab);
    typ(&mut bob, &rig, "looks wrong");
    key(&mut bob, &rig, KeyCode::Enter);
    let (msg, err) = bob.message.clone().unwrap();
    assert!(err && msg.contains("accept by ann"), "{msg}");
    insta::assert_snapshot!("conflict", draw(&bob, 80, 24).backend());
    let d = rig.backend.detail(id).unwrap();
    assert_eq!(d.read.status, ReadStatus::Accepted);
    assert_eq!(d.audit.len(), 1);
    // Bob's view now shows the accepted read; he cannot undo Ann's action.
    key(&mut bob, &rig, KeyCode::Char('u'));
    assert_eq!(rig.backend.detail(id).unwrap().read.status, ReadStatus::Accepted);
}

#[test]
fn the_local_backend_waits_for_a_store_another_clerk_holds() {
    let rig = rig();
    let held = meterd::store::RedbStore::open_dir(&rig.backend.data_dir).unwrap();
    // Held and no patience: a clear error naming the cause.
    let impatient = LocalBackend {
        wait: std::time::Duration::ZERO,
        ..rig.backend.clone()
    };
    let err = impatient.queue(&QueueFilter::default()).unwrap_err().to_string();
    assert!(err.contains("open in another process"), "{err}");
    // Released while waiting: the operation goes through.
    let releaser = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(held);
    });
    let view = rig.backend.queue(&QueueFilter::default()).unwrap();
    assert_eq!(view.total, 3);
    releaser.join().unwrap();
}

/// Ann edits W-100's spike 14220 → 13608 through the keys (consumption 912 → 300).
fn edit_the_spike(app: &mut App, rig: &Rig) {
    key(app, rig, KeyCode::Home);
    key(app, rig, KeyCode::Down);
    assert_eq!(app.detail.as_ref().unwrap().read.read.meter_id, "W-100");
    key(app, rig, KeyCode::Char('e'));
    for _ in 0..5 {
        key(app, rig, KeyCode::Backspace);
    }
    typ(app, rig, "13608");
    key(app, rig, KeyCode::Tab);
    typ(app, rig, "keyed 9 for 6");
    key(app, rig, KeyCode::Enter);
    assert!(app.dialog.is_none(), "{:?}", app.message);
}

fn screen_text(t: &Terminal<TestBackend>) -> String {
    let buf = t.backend().buffer();
    let w = usize::from(buf.area.width);
    buf.content()
        .chunks(w)
        .map(|row| row.iter().map(|c| c.symbol()).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn approvals_queue_the_author_is_refused_another_supervisor_declines_then_approves() {
    let mut vee = VeeConfig::default();
    vee.water.approval_threshold = Some(q("50"));
    let rig = rig_with(vee);
    let mut ann = app(&rig, "ann");
    edit_the_spike(&mut ann, &rig);
    let (msg, err) = ann.message.clone().unwrap();
    assert!(!err && msg.contains("awaits a supervisor's approval"), "{msg}");
    let id = ann.detail.as_ref().unwrap().read.id;
    assert_eq!(rig.backend.detail(id).unwrap().read.status, ReadStatus::PendingApproval);
    // The header says there is something to approve, and where.
    let top = screen_text(&draw(&ann, 80, 24));
    assert!(
        top.lines().next().unwrap().contains("2 held · 1 to approve (p)"),
        "{top}"
    );

    // The author in the approvals queue: refused, the dialog says why.
    key(&mut ann, &rig, KeyCode::Char('p'));
    assert_eq!((ann.view, ann.approvals.len()), (View::Approvals, 1));
    key(&mut ann, &rig, KeyCode::Char('a'));
    key(&mut ann, &rig, KeyCode::Enter);
    let e = ann.dialog.as_ref().unwrap().error.clone().unwrap();
    assert!(e.contains("another supervisor must approve it"), "{e}");
    key(&mut ann, &rig, KeyCode::Esc);
    // Clerk keys do nothing there but say which keys do.
    key(&mut ann, &rig, KeyCode::Char('e'));
    assert!(ann.dialog.is_none() && ann.message.as_ref().unwrap().0.contains("a approve · d decline"));

    // Bob declines: a reason is required; the read goes back to 14220, held.
    let mut bob = app(&rig, "bob");
    key(&mut bob, &rig, KeyCode::Char('p'));
    insta::assert_snapshot!("approvals_80x24", draw(&bob, 80, 24).backend());
    key(&mut bob, &rig, KeyCode::Char('d'));
    insta::assert_snapshot!("decline_dialog", draw(&bob, 80, 24).backend());
    key(&mut bob, &rig, KeyCode::Enter);
    assert_eq!(
        bob.dialog.as_ref().unwrap().error.as_deref(),
        Some("a reason is required")
    );
    typ(&mut bob, &rig, "photo shows 14220");
    key(&mut bob, &rig, KeyCode::Enter);
    assert!(bob.dialog.is_none(), "{:?}", bob.message);
    let d = rig.backend.detail(id).unwrap();
    assert_eq!((d.read.read.value, d.read.status), (q("14220"), ReadStatus::Flagged));
    assert_eq!(
        d.audit.last().unwrap().reason,
        "photo shows 14220 (declined edit of entry 1 by ann)"
    );
    // Not undoable by bob.
    key(&mut bob, &rig, KeyCode::Char('u'));
    assert_eq!(rig.backend.detail(id).unwrap().read.status, ReadStatus::Flagged);

    // Ann tries again; Bob approves with a note: billable (edited).
    key(&mut ann, &rig, KeyCode::Char('p'));
    assert_eq!(ann.view, View::Held);
    edit_the_spike(&mut ann, &rig);
    key(&mut bob, &rig, KeyCode::Char('g'));
    assert_eq!(bob.approvals.len(), 1);
    key(&mut bob, &rig, KeyCode::Home);
    key(&mut bob, &rig, KeyCode::Char('a'));
    typ(&mut bob, &rig, "ok after call");
    key(&mut bob, &rig, KeyCode::Enter);
    assert!(bob.dialog.is_none(), "{:?}", bob.message);
    let d = rig.backend.detail(id).unwrap();
    assert_eq!((d.read.read.value, d.read.status), (q("13608"), ReadStatus::Edited));
    assert!(bob.approvals.is_empty());
    let screen = screen_text(&draw(&bob, 80, 24));
    assert!(
        screen
            .lines()
            .last()
            .unwrap()
            .starts_with(meterd::review::tui::APPROVALS_HELP_LINE),
        "{screen}"
    );
}
