//! The billing API's limits against the real `meterd run` on real sockets: idle, slow-header,
//! stalled-body and TLS-handshake connections are closed after the configured (short) timeouts;
//! with the connection cap reached a new connection gets 503 JSON and `/healthz` answers again
//! once connections close; every error status answers the API's JSON error object; refused
//! tokens are logged once per address, not once per request.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use crate::common::daemon::Daemon;
use crate::common::free_port;
use crate::common::{METERS_HEADER, Scratch, meter_line};

/// Slack for "closed within the timeout": the watchdog is exact, the machine may be busy.
const MARGIN: Duration = Duration::from_secs(3);

struct Api {
    s: Scratch,
    daemon: Option<Daemon>,
    addr: SocketAddr,
    token: String,
}

/// A daemon with two meters, one read each, a token "cis", and `[http]` with `extra` settings.
fn start(extra: &str) -> Api {
    let s = Scratch::new();
    let meters = s.file(
        "meters.csv",
        &format!(
            "{METERS_HEADER}{}{}",
            meter_line("M1", "water", 8, "active"),
            meter_line("M2", "water", 8, "active")
        ),
    );
    s.ok(&["meters", "import", meters.to_str().unwrap()]);
    let reads = s.file(
        "reads.csv",
        "meter_id,read_at,value,read_type,codes\nM1,2026-11-02T08:00:00Z,1200,manual,\nM2,2026-11-02T08:05:00Z,3400,manual,\n",
    );
    s.ok(&["reads", "import", reads.to_str().unwrap()]);
    let token = s.ok(&["tokens", "create", "cis"]).trim().to_owned();
    let port = free_port();
    let config = s.file(
        "meterd.toml",
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n{extra}\n"),
    );
    let daemon = Daemon::start(&s, &config);
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let api = Api {
        s,
        daemon: Some(daemon),
        addr,
        token,
    };
    api.daemon()
        .wait_for("the API listening", Duration::from_secs(60), |l| {
            l.contains("billing API listening")
        });
    api
}

#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.lines().skip(1).find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    /// The API's error object: JSON content type, `{"error": "<text>"}`; returns the text.
    fn error_text(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/json"),
            "status {} content type: {self:?}",
            self.status
        );
        let v: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("status {} body is not JSON ({e}): {self:?}", self.status));
        let text = v["error"].as_str().unwrap_or_else(|| panic!("no error text: {v}"));
        assert!(!text.is_empty());
        assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
        text.to_owned()
    }
}

/// Read one answer (head, then a Content-Length or chunked body) from `c`.
fn read_answer(c: &mut TcpStream) -> std::io::Result<Answer> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if c.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                format!("closed after {} bytes of head", buf.len()),
            ));
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let mut a = Answer {
        status,
        head,
        body: Vec::new(),
    };
    if let Some(n) = a.header("content-length") {
        let mut body = vec![0; n.parse().unwrap()];
        c.read_exact(&mut body)?;
        a.body = body;
    } else if a.header("transfer-encoding") == Some("chunked") {
        loop {
            let mut line = Vec::new();
            while !line.ends_with(b"\r\n") {
                c.read_exact(&mut byte)?;
                line.push(byte[0]);
            }
            let n = usize::from_str_radix(std::str::from_utf8(&line).unwrap().trim(), 16).unwrap();
            let mut chunk = vec![0; n + 2];
            c.read_exact(&mut chunk)?;
            if n == 0 {
                break;
            }
            a.body.extend_from_slice(&chunk[..n]);
        }
    }
    Ok(a)
}

/// Waits for the server to close `c`; how long that took. Fails after `limit`.
fn closed_within(c: &mut TcpStream, limit: Duration) -> Duration {
    let t0 = Instant::now();
    c.set_read_timeout(Some(limit)).unwrap();
    let mut buf = [0u8; 256];
    loop {
        match c.read(&mut buf) {
            Ok(0) => return t0.elapsed(),
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return t0.elapsed(),
            Err(e) => panic!("the connection was not closed within {limit:?}: {e}"),
        }
    }
}

impl Api {
    fn daemon(&self) -> &Daemon {
        self.daemon.as_ref().unwrap()
    }

    fn connect(&self) -> TcpStream {
        let c = TcpStream::connect(self.addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        c
    }

    fn try_request(&self, raw: &str) -> std::io::Result<Answer> {
        let mut c = TcpStream::connect(self.addr)?;
        c.set_read_timeout(Some(Duration::from_secs(30)))?;
        c.write_all(raw.as_bytes())?;
        read_answer(&mut c)
    }

    /// One request on its own connection (closed after the answer).
    fn request(&self, method: &str, target: &str, headers: &str, body: &str) -> Answer {
        let raw = format!(
            "{method} {target} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n{headers}\r\n{body}",
            body.len()
        );
        self.try_request(&raw)
            .unwrap_or_else(|e| panic!("{method} {target}: {e}\n{}", self.daemon().log()))
    }

    fn get(&self, target: &str) -> Answer {
        self.request("GET", target, &format!("Authorization: Bearer {}\r\n", self.token), "")
    }

    fn stop(mut self) {
        self.daemon.take().unwrap().stop();
    }
}

#[test]
fn idle_slow_header_and_stalled_body_connections_are_closed_after_their_timeouts() {
    // Three different timeouts, so each close shows which limit fired.
    let api = start("header_read_timeout_secs = 2\nkeep_alive_timeout_secs = 4\nrequest_timeout_secs = 3\n");

    // Kept alive after an answer, then idle: closed by keep_alive_timeout (4 s), not by the
    // header timeout (2 s) that hyper would otherwise start as soon as it waits.
    let mut idle = api.connect();
    idle.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_answer(&mut idle).unwrap().status, 200);
    let waited = closed_within(&mut idle, Duration::from_secs(4) + MARGIN);
    assert!(waited >= Duration::from_millis(3800), "idle closed after {waited:?}");

    // A connection that never sends a byte: closed after the shorter timeout (2 s).
    let mut silent = api.connect();
    let waited = closed_within(&mut silent, Duration::from_secs(2) + MARGIN);
    assert!(waited >= Duration::from_millis(1800), "silent closed after {waited:?}");

    // Headers trickled in, a line every 300 ms, never finished: closed 2 s after the first
    // byte although bytes keep coming.
    let mut slow = api.connect();
    let mut writer = slow.try_clone().unwrap();
    writer.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n").unwrap();
    let trickle = std::thread::spawn(move || {
        for i in 0..40 {
            std::thread::sleep(Duration::from_millis(300));
            if writer.write_all(format!("X-Slow-{i}: a\r\n").as_bytes()).is_err() {
                break;
            }
        }
    });
    let waited = closed_within(&mut slow, Duration::from_secs(2) + MARGIN);
    assert!(
        waited >= Duration::from_millis(1800),
        "slow headers closed after {waited:?}"
    );
    trickle.join().unwrap();

    // A body announced but stalled: 408 JSON once request_timeout (3 s) has passed.
    let mut stalled = api.connect();
    let t0 = Instant::now();
    stalled
        .write_all(
            format!(
                "POST /v1/batches/1/ack HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {}\r\nContent-Length: 100\r\n\r\n0123456789",
                api.token
            )
            .as_bytes(),
        )
        .unwrap();
    let a = read_answer(&mut stalled).unwrap();
    let waited = t0.elapsed();
    assert_eq!(a.status, 408, "{a:?}");
    assert!(a.error_text().contains("did not complete within 3 s"), "{a:?}");
    assert!(
        waited >= Duration::from_millis(2800) && waited <= Duration::from_secs(3) + MARGIN,
        "{waited:?}"
    );

    // The daemon still serves.
    assert_eq!(api.get("/v1/batches").status, 200);
    api.stop();
}

#[test]
fn with_the_connection_cap_reached_new_connections_get_503_until_one_closes() {
    let api = start("max_connections = 3\nkeep_alive_timeout_secs = 60\nheader_read_timeout_secs = 60\n");
    // Three kept-alive connections, each having had an answer (so each holds its slot now).
    let mut held: Vec<TcpStream> = (0..3)
        .map(|_| {
            let mut c = api.connect();
            c.write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
            assert_eq!(read_answer(&mut c).unwrap().status, 200);
            c
        })
        .collect();
    for _ in 0..3 {
        let a = api.request("GET", "/healthz", "", "");
        assert_eq!(a.status, 503, "{a:?}");
        assert!(a.error_text().contains("limit of 3 connections"), "{a:?}");
        assert_eq!(a.header("retry-after"), Some("1"));
        assert_eq!(a.header("connection"), Some("close"));
    }
    // A held connection still works.
    held[0].write_all(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n").unwrap();
    assert_eq!(read_answer(&mut held[0]).unwrap().status, 200);
    // One closes: health answers again (the slot is freed when the server sees the close).
    drop(held.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let a = api.request("GET", "/healthz", "", "");
        if a.status == 200 {
            break;
        }
        assert_eq!(a.status, 503);
        assert!(Instant::now() < deadline, "health never came back");
        std::thread::sleep(Duration::from_millis(50));
    }
    drop(held);
    std::thread::sleep(Duration::from_millis(200));
    let metrics = String::from_utf8(api.get("/metrics").body).unwrap();
    let refused: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("meterd_http_connections_refused_total "))
        .unwrap_or_else(|| panic!("{metrics}"))
        .parse()
        .unwrap();
    assert!(refused >= 3.0, "{metrics}");
    api.stop();
}

#[test]
fn every_error_status_answers_the_json_error_object() {
    let api = start("max_body_bytes = 1024\n");
    let auth = format!("Authorization: Bearer {}\r\n", api.token);
    let cases: Vec<(u16, Answer, &str)> = vec![
        (400, api.get("/v1/batches/next?x-unknown=1"), "x-unknown"),
        (400, api.get("/v1/batches/next?max=abc"), "max"),
        (400, api.get("/v1/batches/next?max=0"), "max 0: use 1..=100000"),
        (400, api.get("/v1/batches/next?max=100001"), "max 100001"),
        (400, api.get("/v1/batches/next?format="), "unknown format"),
        (400, api.get("/v1/batches?status=bogus"), "status"),
        (400, api.get("/v1/batches/abc"), "not a number"),
        (400, api.get("/v1/meters/M1/reads?from=2026-11-01"), "RFC 3339"),
        (400, api.get("/v1/meters/M1/reads?from="), "RFC 3339"),
        (401, api.request("GET", "/v1/batches", "", ""), "bearer token"),
        (
            401,
            api.request("GET", "/metrics", "Authorization: Bearer mtd_nope\r\n", ""),
            "bearer token",
        ),
        (404, api.get("/v1/nothing-here"), "no such route"),
        (404, api.request("GET", "/", "", ""), "no such route"),
        (404, api.get("/v1/batches/999"), "batch 999 not found"),
        (404, api.get("/v1/meters/NOPE/reads"), "meter \"NOPE\" not found"),
        (
            405,
            api.request("DELETE", "/v1/batches", &auth, ""),
            "method not allowed",
        ),
        (
            405,
            api.request("GET", "/v1/batches/1/ack", &auth, ""),
            "method not allowed",
        ),
        (
            413,
            api.request("POST", "/v1/batches/1/ack", &auth, &"x".repeat(1025)),
            "over 1024 bytes",
        ),
        (
            414,
            api.get(&format!("/v1/batches?status={}", "a".repeat(9000))),
            "at most 8192",
        ),
        (
            431,
            api.request("GET", "/healthz", &format!("X-Big: {}\r\n", "b".repeat(17_000)), ""),
            "at most 16384",
        ),
    ];
    for (want, a, says) in &cases {
        assert_eq!(a.status, *want, "{says}: {a:?}");
        let text = a.error_text();
        assert!(text.contains(says), "{want}: {text:?} lacks {says:?}");
    }
    assert!(cases[15].1.header("allow").is_some_and(|v| v.contains("GET")));
    assert!(cases[9].1.header("www-authenticate").is_some());

    // A chunked body (no length announced) over the limit: 413 too.
    let mut c = api.connect();
    c.write_all(
        format!("POST /v1/batches/1/ack HTTP/1.1\r\nHost: t\r\n{auth}Transfer-Encoding: chunked\r\n\r\n").as_bytes(),
    )
    .unwrap();
    for _ in 0..3 {
        c.write_all(format!("200\r\n{}\r\n", "y".repeat(512)).as_bytes())
            .unwrap();
    }
    c.write_all(b"0\r\n\r\n").unwrap();
    let a = read_answer(&mut c).unwrap();
    assert_eq!(a.status, 413, "{a:?}");
    a.error_text();

    // Within the limit, the ack works (the body is ignored).
    assert_eq!(api.get("/v1/batches/next").status, 200);
    let a = api.request("POST", "/v1/batches/1/ack", &auth, "{}");
    assert_eq!(a.status, 200, "{a:?}");
    api.stop();
}

#[test]
fn refused_tokens_are_logged_once_per_address_and_all_counted() {
    let api = start("");
    for i in 0..25 {
        let a = api.request(
            "GET",
            "/v1/batches",
            &format!("Authorization: Bearer mtd_guess{i}\r\n"),
            "",
        );
        assert_eq!(a.status, 401);
    }
    let metrics = String::from_utf8(api.get("/metrics").body).unwrap();
    assert!(metrics.contains("meterd_http_unauthorized_total 25"), "{metrics}");
    let log = api.daemon().log();
    assert_eq!(
        log.matches("without a valid token refused").count(),
        1,
        "one line for the first refusal, the rest wait for the minute's summary:\n{log}"
    );
    let _ = &api.s;
    api.stop();
}

#[test]
fn a_tls_handshake_that_does_not_finish_is_closed() {
    let s_key = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("api.crt"), dir.path().join("api.key"));
    std::fs::write(&cert, s_key.cert.pem()).unwrap();
    std::fs::write(&key, s_key.signing_key.serialize_pem()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let api = start(&format!(
        "tls_cert = \"{}\"\ntls_key = \"{}\"\ntls_handshake_timeout_secs = 2\nheader_read_timeout_secs = 30\nkeep_alive_timeout_secs = 30\n",
        cert.display(),
        key.display()
    ));
    let mut c = api.connect();
    // Half a TLS record header, then nothing.
    c.write_all(&[0x16, 0x03]).unwrap();
    let waited = closed_within(&mut c, Duration::from_secs(2) + MARGIN);
    assert!(waited >= Duration::from_millis(1800), "closed after {waited:?}");
    api.stop();
}
