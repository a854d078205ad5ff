//! The control socket spoken to byte by byte, as a hostile or outdated client would: frames
//! over the limit, an unknown protocol version, garbage, the old JSON-line protocol, messages
//! out of turn. Each is refused with a clear message and the connection closed; the daemon
//! keeps serving.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::Duration;

use meterd::api::frame::{self, MAX_FRAME};
use meterd::api::{PROTOCOL_VERSION, Request, ToClient, ToDaemon};

use crate::common::Scratch;
use crate::common::daemon::Daemon;

fn daemon(s: &Scratch) -> Daemon {
    let config = s.file("meterd.toml", "[daemon]\nstop_deadline_secs = 10\n");
    let d = Daemon::start(s, &config);
    d.wait_for("the daemon running", Duration::from_secs(60), |l| {
        l.contains("meterd running")
    });
    d
}

fn connect(s: &Scratch) -> UnixStream {
    let c = UnixStream::connect(s.data_dir().join("control.sock")).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    c
}

/// The daemon's answer, then the end of the connection.
fn answer_then_closed(c: &mut UnixStream) -> ToClient {
    let msg = frame::read_blocking::<ToClient>(c)
        .expect("a frame")
        .expect("an answer before the end");
    let mut rest = Vec::new();
    c.read_to_end(&mut rest).unwrap();
    assert!(rest.is_empty(), "nothing after the answer: {rest:?}");
    msg
}

fn error_text(msg: ToClient) -> String {
    match msg {
        ToClient::Error { message } | ToClient::Refused { message } => message,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

fn hello(c: &mut UnixStream) {
    let bytes = frame::encode(&ToDaemon::Hello {
        protocol: PROTOCOL_VERSION,
        client: "test".into(),
    })
    .unwrap();
    c.write_all(&bytes).unwrap();
    match frame::read_blocking::<ToClient>(c).unwrap().unwrap() {
        ToClient::Welcome { user, uid, .. } => assert_eq!((user.as_str(), uid), ("root", 0)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_frames_versions_and_garbage_are_refused_and_the_daemon_keeps_serving() {
    let s = Scratch::new();
    let d = daemon(&s);

    // A frame larger than the limit: refused from its length alone, nothing more is read.
    let mut c = connect(&s);
    c.write_all(&((MAX_FRAME as u32) * 2).to_be_bytes()).unwrap();
    let m = error_text(answer_then_closed(&mut c));
    assert!(m.contains("larger than the limit of 1048576 bytes"), "{m}");

    // Another protocol version: refused with both numbers.
    let mut c = connect(&s);
    c.write_all(&frame::encode(&serde_json::json!({"type": "hello", "protocol": 99, "client": "9.9"})).unwrap())
        .unwrap();
    let m = error_text(answer_then_closed(&mut c));
    assert!(
        m.contains("speaks protocol version 99") && m.contains(&format!("speaks version {PROTOCOL_VERSION}")),
        "{m}"
    );

    // Garbage: an HTTP request, and a well-sized frame that is not JSON.
    let mut c = connect(&s);
    c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let m = error_text(answer_then_closed(&mut c));
    assert!(m.contains("larger than the limit"), "{m}");
    let mut c = connect(&s);
    c.write_all(&[0, 0, 0, 5]).unwrap();
    c.write_all(b"\x00\xff!?x").unwrap();
    let m = error_text(answer_then_closed(&mut c));
    assert!(m.contains("not a valid message"), "{m}");

    // A client of the old protocol (one JSON line with an argv).
    let mut c = connect(&s);
    c.write_all(b"{\"argv\":[\"meterd\",\"batches\",\"export\",\"--out\",\"/etc/passwd\"]}\n")
        .unwrap();
    let m = error_text(answer_then_closed(&mut c));
    assert!(
        m.contains("JSON line from a meterd client older than protocol version"),
        "{m}"
    );

    // Messages out of turn: a request before the hello, an upload nobody asked for.
    let mut c = connect(&s);
    c.write_all(
        &frame::encode(&ToDaemon::Request {
            request: Request::Reload,
            on_behalf_of: None,
        })
        .unwrap(),
    )
    .unwrap();
    assert!(error_text(answer_then_closed(&mut c)).contains("expected a hello first"));
    let mut c = connect(&s);
    hello(&mut c);
    c.write_all(&frame::encode(&ToDaemon::UploadEnd).unwrap()).unwrap();
    assert!(error_text(answer_then_closed(&mut c)).contains("expected a request"));

    // An unknown request after a good hello.
    let mut c = connect(&s);
    hello(&mut c);
    c.write_all(
        &frame::encode(&serde_json::json!({"type": "request", "request": "format_disk", "on_behalf_of": null}))
            .unwrap(),
    )
    .unwrap();
    assert!(error_text(answer_then_closed(&mut c)).contains("not a valid message"));

    // A connection cut in the middle of a frame, and one that never says hello, cost nothing.
    let mut c = connect(&s);
    c.write_all(&[0, 0, 1]).unwrap();
    drop(c);
    let _silent = connect(&s);

    // Still serving, and every refusal was logged.
    let out = s.ok(&["reads", "list", "--json"]);
    assert_eq!(out.trim(), "[]");
    d.wait_until("the refusals logged", Duration::from_secs(10), || {
        d.log().matches("control connection refused").count() >= 6
    });
    d.stop();
}

#[test]
fn a_request_with_a_control_character_is_refused_and_the_connection_stays() {
    let s = Scratch::new();
    let d = daemon(&s);
    let mut c = connect(&s);
    hello(&mut c);
    let send = |c: &mut UnixStream, on_behalf_of: Option<&str>| {
        c.write_all(
            &frame::encode(&ToDaemon::Request {
                request: Request::ReviewQueue {
                    filter: meterd::review::QueueFilter {
                        route: Some("R1\u{1b}[2J".into()),
                        ..Default::default()
                    },
                },
                on_behalf_of: on_behalf_of.map(str::to_owned),
            })
            .unwrap(),
        )
        .unwrap();
        frame::read_blocking::<ToClient>(c).unwrap().unwrap()
    };
    let m = error_text(send(&mut c, None));
    assert!(m.contains("the route contains a control character (U+001B"), "{m}");
    // Refused, not dropped: the same connection answers the next request.
    c.write_all(
        &frame::encode(&ToDaemon::Request {
            request: Request::ReviewQueue {
                filter: Default::default(),
            },
            on_behalf_of: Some("ann\nforged log line".into()),
        })
        .unwrap(),
    )
    .unwrap();
    let m = error_text(frame::read_blocking::<ToClient>(&mut c).unwrap().unwrap());
    assert!(m.contains("--on-behalf-of contains a control character"), "{m}");
    assert!(!d.log().contains("forged log line"), "{}", d.log());
    d.stop();
}

#[test]
fn an_upload_past_the_limit_is_refused_by_the_daemon_itself() {
    // A client that ignores the limit the real client enforces: the daemon counts what
    // arrives (spooling it to disk), refuses past 512 MiB and closes; nothing is stored.
    let s = Scratch::new();
    let d = daemon(&s);
    let mut c = connect(&s);
    hello(&mut c);
    let cmd = meterd::api::Command::Reads(meterd::api::commands::ReadsCmd::Import {
        file: "endless.csv".into(),
        json: false,
        chunk: 20_000,
    });
    c.write_all(
        &frame::encode(&ToDaemon::Request {
            request: Request::Command(cmd),
            on_behalf_of: None,
        })
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        frame::read_blocking::<ToClient>(&mut c).unwrap().unwrap(),
        ToClient::SendUpload
    );
    // One full chunk, sent over and over (encoded once: the test's cost is the socket's).
    let chunk = frame::encode(&ToDaemon::Upload {
        data: meterd::api::proto::Chunk(b"W1,2025-01-01T08:00:00Z,1,manual,\n".repeat(7_700)),
    })
    .unwrap();
    let mut writer = c.try_clone().unwrap();
    let sent = std::thread::spawn(move || {
        let mut n = 0u64;
        while writer.write_all(&chunk).is_ok() {
            n += 1;
            if n > 4_000 {
                break; // far past the limit: the daemon did not stop us
            }
        }
        n
    });
    c.set_read_timeout(Some(Duration::from_secs(120))).unwrap();
    let m = error_text(frame::read_blocking::<ToClient>(&mut c).unwrap().unwrap());
    assert!(m.contains("larger than the 512 MiB a command may read"), "{m}");
    assert!(sent.join().unwrap() < 4_000, "the daemon closed the connection");
    assert_eq!(s.ok(&["reads", "list", "--json"]).trim(), "[]");
    d.stop();
}
