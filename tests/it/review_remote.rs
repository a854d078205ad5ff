//! The review screen through the daemon ([`RemoteBackend`]): the queue, actions as the OS
//! user, new flagged reads appearing on the next poll without the open read being yanked
//! away, and a screen that says so (and retries) when the daemon is not there.

use std::time::Duration;

use jiff::civil::date;
use meterd::api::remote::RemoteBackend;
use meterd::review::QueueFilter;
use meterd::review::tui::App;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use crate::common::Scratch;
use crate::common::daemon::Daemon;
use crate::review_fixture::town;

fn scratch() -> Scratch {
    let s = Scratch::new();
    drop(town(&s.data_dir()));
    s.file("meterd.toml", "[daemon]\nstop_deadline_secs = 10\n");
    s
}

fn start(s: &Scratch) -> Daemon {
    let d = Daemon::start(s, &s.dir.path().join("meterd.toml"));
    d.wait_for("the daemon running", Duration::from_secs(60), |l| {
        l.contains("meterd running")
    });
    d
}

fn backend(s: &Scratch) -> RemoteBackend {
    RemoteBackend::new(s.data_dir().join("control.sock"), None, None)
}

fn key(app: &mut App, b: &RemoteBackend, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE), b);
}

fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(80, 24)).unwrap();
    t.draw(|f| app.render(f)).unwrap();
    let buf = t.backend().buffer();
    (0..buf.area.height)
        .map(|y| (0..buf.area.width).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
        .collect()
}

fn open_id(app: &App) -> u64 {
    app.detail.as_ref().expect("a read on screen").read.id
}

#[test]
fn the_screen_works_through_the_daemon_and_new_reads_do_not_yank_the_open_one() {
    let s = scratch();
    let d = start(&s);
    let b = backend(&s);
    let mut app = App::new("root".into(), QueueFilter::default(), date(2026, 1, 10));
    app.refresh(&b);
    assert_eq!((app.queue.total, app.unavailable.as_deref()), (3, None));
    key(&mut app, &b, KeyCode::Down);
    let open = open_id(&app);
    assert_eq!(app.queue.items[app.selected].read.id, open);

    // The daemon takes in a read of an unknown meter: the worst kind, it sorts first.
    s.file(
        "new.csv",
        "meter_id,read_at,value,read_type,codes\nX-999,2026-01-05T08:00:00Z,100,manual,\n",
    );
    s.ok(&["reads", "import", "new.csv"]);
    app.refresh(&b); // what the screen does every 2 s when idle
    assert_eq!(app.queue.total, 4);
    assert_eq!(app.queue.items[0].read.read.meter_id, "X-999");
    assert_eq!(open_id(&app), open, "the open read stays open");
    assert_eq!(app.queue.items[app.selected].read.id, open, "and selected");

    // Another clerk accepts the read this one has open: it stays on screen, as accepted.
    s.ok(&["--on-behalf-of", "bob", "review", "accept", &open.to_string()]);
    app.refresh(&b);
    assert_eq!(app.queue.total, 3);
    assert_eq!(open_id(&app), open);
    assert_eq!(app.detail.as_ref().unwrap().read.status.as_str(), "accepted");
    assert!(app.pinned);

    // Moving on, then an action through the daemon: the clerk is the OS user.
    key(&mut app, &b, KeyCode::Home);
    let first = open_id(&app);
    key(&mut app, &b, KeyCode::Char('n'));
    for c in "called the owner".chars() {
        key(&mut app, &b, KeyCode::Char(c));
    }
    key(&mut app, &b, KeyCode::Enter);
    let (msg, err) = app.message.clone().unwrap();
    assert!(!err && msg.contains("note added"), "{msg}");
    let audit = s.json(&["audit", "show", "--read", &first.to_string(), "--json"]);
    assert_eq!(audit[0]["clerk"], "root");
    // A refusal shows on the message line, never as "no queue".
    key(&mut app, &b, KeyCode::Char('u'));
    assert!(app.message.as_ref().unwrap().1);
    assert!(app.unavailable.is_none());
    assert!(d.log().contains("request=review note"), "{}", d.log());
    d.stop();
}

#[test]
fn no_daemon_is_said_in_the_body_and_r_retries() {
    let s = scratch();
    let b = backend(&s);
    let mut app = App::new("root".into(), QueueFilter::default(), date(2026, 1, 10));
    app.refresh(&b);
    let why = app.unavailable.clone().expect("no queue without a daemon");
    assert!(why.contains("no meterd daemon answers on"), "{why}");
    let text = screen(&app);
    assert!(
        text.contains("No queue to show") && text.contains("r to retry") && text.contains("no queue"),
        "{text}"
    );
    assert!(!text.contains("0 held"), "never an empty queue for an error:\n{text}");
    // Keys other than retry and quit do nothing.
    key(&mut app, &b, KeyCode::Char('a'));
    assert!(app.message.is_none());

    let d = start(&s);
    key(&mut app, &b, KeyCode::Char('r'));
    assert_eq!((app.queue.total, app.unavailable.as_deref()), (3, None));
    assert!(screen(&app).contains("3 held"));

    // The daemon dies: the next refresh says so instead of showing an empty queue.
    d.kill();
    app.refresh(&b);
    assert!(
        app.unavailable
            .as_deref()
            .is_some_and(|w| w.contains("no meterd daemon answers")),
        "{:?}",
        app.unavailable
    );
}
