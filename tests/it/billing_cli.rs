//! The billing commands of the real binary: tokens, file export, and the API served by
//! `meterd run` with an `[http]` section.

use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::{METERS_HEADER, Scratch, meter_line};
use meterd_protocols::fixed_width::Layout;

const READS_HEADER: &str = "meter_id,read_at,value,read_type,codes\n";

fn setup(s: &Scratch) {
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
        &format!("{READS_HEADER}M1,2026-11-02T08:00:00Z,1200,manual,\nM2,2026-11-02T08:05:00Z,3400,manual,SC-04\n"),
    );
    s.ok(&["reads", "import", reads.to_str().unwrap()]);
}

#[test]
fn tokens_are_shown_once_listed_without_secret_and_revoked() {
    let s = Scratch::new();
    let token = s.ok(&["tokens", "create", "cis"]).trim().to_owned();
    assert!(token.starts_with("mtd_") && token.len() == 68, "{token}");
    let list = s.json(&["tokens", "list", "--json"]);
    assert_eq!(list[0]["name"], "cis");
    assert!(list[0]["revoked_at"].is_null());
    assert!(!list.to_string().contains(&token[4..]));
    assert!(s.fails(&["tokens", "create", "cis"]).contains("exists"));
    s.ok(&["tokens", "revoke", "cis"]);
    assert!(!s.json(&["tokens", "list", "--json"])[0]["revoked_at"].is_null());
    assert!(s.fails(&["tokens", "revoke", "nobody"]).contains("no token named"));
}

#[test]
fn export_writes_the_same_file_until_acked() {
    let s = Scratch::new();
    setup(&s);
    let out = s.dir.path().join("reads.txt");
    let said = s.ok(&[
        "batches",
        "export",
        "--format",
        "municipal-cis",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(
        said.contains("batch 1 (2 reads, 0 corrections)") && said.contains("meterd batches ack 1"),
        "{said}"
    );
    let first = std::fs::read_to_string(&out).unwrap();
    let layout = Layout::from_toml(include_str!("../../layouts/municipal-cis.toml")).unwrap();
    let recs: Vec<_> = first
        .split("\r\n")
        .filter(|l| !l.is_empty())
        .map(|l| {
            layout
                .parse(l)
                .unwrap()
                .iter()
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect::<Vec<_>>()
        })
        .collect();
    assert_eq!(recs.len(), 2);
    assert!(
        recs[1].contains(&("note_code".to_owned(), "SC-04".to_owned())),
        "{recs:?}"
    );
    s.ok(&[
        "batches",
        "export",
        "--format",
        "municipal-cis",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(
        std::fs::read_to_string(&out).unwrap(),
        first,
        "re-export before ack: same bytes"
    );
    let listed = s.json(&["batches", "list", "--status", "open", "--json"]);
    assert_eq!(
        (listed[0]["client"].as_str(), listed[0]["reads"].as_u64()),
        (Some("file"), Some(2))
    );
    s.ok(&["batches", "ack", "1"]);
    let said = s.ok(&["batches", "export", "--format", "cmep", "--out", out.to_str().unwrap()]);
    assert!(said.contains("nothing to bill"), "{said}");
    assert!(
        s.fails(&["batches", "export", "--format", "fancy", "--out", "x"])
            .contains("sensus-autoread-export")
    );
}

#[test]
fn the_daemon_serves_the_api_from_its_config() {
    let s = Scratch::new();
    setup(&s);
    let token = s.ok(&["tokens", "create", "cis"]).trim().to_owned();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let config = s.file("meterd.toml", &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n"));
    let child = s
        .cmd(&["--config", config.to_str().unwrap(), "run"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let result = rt.block_on(async {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match http.get(format!("{base}/healthz")).send().await {
                Ok(r) if r.status() == 200 => break,
                _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                other => panic!("the daemon did not come up: {other:?}"),
            }
        }
        let unauth = http
            .get(format!("{base}/v1/batches/next"))
            .send()
            .await
            .unwrap()
            .status();
        let csv = http
            .get(format!("{base}/v1/batches/next?format=csv"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        (unauth, csv)
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert_eq!(result.0, 401);
    assert_eq!(result.1.lines().count(), 3, "{}", result.1);
    assert!(
        result.1.contains(",M2,ACC-M2,R1,water,2026-11-02T08:05:00Z,3400,gal,"),
        "{}",
        result.1
    );
}
