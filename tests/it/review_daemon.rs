//! A clerk at work while the daemon runs (issue 13): `meterd run` ingests from a private
//! mosquitto and serves the billing API; the real `meterd review` screen, in an 80×24 tmux
//! terminal, works through the daemon's control socket. The queue shows the held reads, a read
//! flagged while the screen is open appears without restarting it, accept and edit work, and
//! the audit trail names the operating-system user who ran the screen (not a name it claimed).

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use crate::common::Scratch;
use crate::common::daemon::Daemon;
use crate::common::free_port;
use crate::common::mosquitto;
use crate::common::mqtt::publish_all;
use crate::common::tmux::Tmux;

/// The user this test runs as, by the system's account database (what the daemon reads from
/// the socket's peer credentials), not `$USER`.
fn os_user() -> String {
    let out = Command::new("id").arg("-un").output().expect("id");
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// `GET /healthz` on the billing API; the status line.
fn healthz(port: u16) -> String {
    let mut c = TcpStream::connect(("127.0.0.1", port)).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    c.write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    let _ = c.read_to_string(&mut answer);
    answer.lines().next().unwrap_or_default().to_owned()
}

/// An SCM frame heard over the air (rtl_433_tests `tests/ert/scm/01`), for a meter the store
/// does not know: VEE holds it for review as `unknown_meter`.
const SCM_UNKNOWN_METER: &str = "F95306F008951840EA0C101A";

#[test]
fn clerk_works_the_queue_through_the_daemon_while_it_ingests() {
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    // Three meters with a year of reads and one doubtful read each (3 held).
    drop(crate::review_fixture::town(&s.data_dir()));
    let http = free_port();
    let config: PathBuf = s.file(
        "meterd.toml",
        &format!(
            "[mqtt]\nbroker = \"{}\"\nclient_id = \"meterd-review\"\ntopics = [\"meters/+/raw\"]\n\
             batch_latency_ms = 10\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n",
            broker.url()
        ),
    );
    let d = Daemon::start(&s, &config);
    d.wait_for("subscribed", Duration::from_secs(20), |l| {
        l.contains("connected and subscribed")
    });
    // MQTT may subscribe before the API listens: wait for both (a refused connection was seen).
    d.wait_for("billing API", Duration::from_secs(20), |l| {
        l.contains("billing API listening")
    });
    assert!(healthz(http).contains("200"), "billing API: {}", healthz(http));

    let user = os_user();
    let bin = env!("CARGO_BIN_EXE_meterd");
    let command = format!(
        "'{bin}' --config '{}' --data-dir '{}' review",
        config.display(),
        s.data_dir().display()
    );
    let tmux = Tmux::start("review-ingest", 80, 24, &command);
    let screen = tmux.wait_for(&format!("meterd review · {user} · 3 held"));
    assert!(!screen.contains("in use by another process"), "{screen}");

    // Edit W-100's doubtful read (the second in the queue) with a reason.
    tmux.keys(&["Down"]);
    tmux.wait_for("Read 14220 gal");
    tmux.keys(&["e"]);
    tmux.wait_for("Edit value");
    tmux.keys(&["BSpace", "BSpace", "BSpace", "BSpace", "BSpace"]);
    tmux.text("13608");
    tmux.keys(&["Tab"]);
    tmux.text("keyed 9 for 6");
    tmux.keys(&["Enter"]);
    tmux.wait_for(&format!("meterd review · {user} · 2 held"));

    // Accept the read now at the top.
    tmux.keys(&["Home", "a"]);
    tmux.wait_for(&format!("meterd review · {user} · 1 held"));

    // A gateway hears a meter nobody imported: the daemon stores the read flagged, and the
    // open screen shows it within a few seconds, without a restart.
    publish_all(
        broker.port,
        &[("meters/pole-7/raw".to_owned(), SCM_UNKNOWN_METER.as_bytes().to_vec())],
    );
    d.wait_until("the frame committed", Duration::from_secs(20), || {
        d.sum("mqtt: committed", "reads") >= 1
    });
    let started = Instant::now();
    let screen = tmux.wait_for(&format!("meterd review · {user} · 2 held"));
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "the new read took {:?} to appear",
        started.elapsed()
    );
    assert!(screen.contains("unknown_meter"), "{screen}");

    tmux.quit();

    // The CLI, also through the daemon: the audit trail names the OS user for both actions.
    let audit = s.ok(&[
        "--config",
        config.to_str().unwrap(),
        "audit",
        "show",
        "--meter",
        "W-100",
    ]);
    let edit = audit
        .lines()
        .find(|l| l.contains(" edit "))
        .unwrap_or_else(|| panic!("{audit}"));
    for part in [user.as_str(), "14220", "13608", "flagged → edited", "keyed 9 for 6"] {
        assert!(edit.contains(part), "{part} in {edit}");
    }
    let all: String = ["G-200", "E-300"]
        .iter()
        .map(|m| s.ok(&["--config", config.to_str().unwrap(), "audit", "show", "--meter", m]))
        .collect();
    let accept = all
        .lines()
        .find(|l| l.contains(" accept "))
        .unwrap_or_else(|| panic!("{all}"));
    assert!(accept.contains(&user), "{accept}");
    assert!(
        s.ok(&["--config", config.to_str().unwrap(), "audit", "verify"])
            .contains("intact: 2 entries"),
        "audit verify"
    );
    d.stop();
}
