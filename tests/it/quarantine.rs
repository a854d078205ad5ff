//! The quarantine clerks and operators work, against a real mosquitto and the real `meterd
//! run`: list/show/retry/purge through the control socket, the retry of wM-Bus telegrams once
//! their key is fixed, and the retention limit under a flood of garbage.

use std::path::PathBuf;
use std::time::Duration;

use meterd_protocols::wmbus::crypto::cbc_encrypt;
use rand::{Rng, SeedableRng};

use crate::common::daemon::Daemon;
use crate::common::mosquitto::{self, Mosquitto};
use crate::common::mqtt::{publish_all, subscribed};
use crate::common::{NOBODY, Scratch, failed};

fn config(s: &Scratch, broker: &Mosquitto, client_id: &str, extra: &str) -> PathBuf {
    s.file(
        "meterd.toml",
        &format!(
            "[mqtt]\nbroker = \"{}\"\nclient_id = \"{client_id}\"\ntopics = [\"meters/+/raw\"]\n\
             batch_latency_ms = 10\nkeep_alive_secs = 5\n{extra}",
            broker.url()
        ),
    )
}

fn list(s: &Scratch, args: &[&str]) -> serde_json::Value {
    let mut a = vec!["quarantine", "list", "--json"];
    a.extend_from_slice(args);
    s.json(&a)
}

/// A mode 5 wM-Bus telegram (EN 13757-4 DLL, EN 13757-3 short TPL header, AES-128-CBC with
/// the IV of EN 13757-7 §9.2: M, A, then the access number 8 times) carrying one volume record
/// (DIF 04, VIF 13: litres) of meter `id` (BCD in the telegram).
fn telegram(id: u32, acc: u8, litres: u32, key: &[u8; 16]) -> Vec<u8> {
    let bcd: u32 = format!("{id:08}")
        .chars()
        .fold(0, |a, c| (a << 4) | c.to_digit(10).unwrap());
    let a = bcd.to_le_bytes();
    let mut plain = vec![0x2F, 0x2F, 0x04, 0x13];
    plain.extend_from_slice(&litres.to_le_bytes());
    while plain.len() % 16 != 0 {
        plain.push(0x2F);
    }
    let m_a = [0x2D, 0x2C, a[0], a[1], a[2], a[3], 0x01, 0x07];
    let mut iv = [acc; 16];
    iv[..8].copy_from_slice(&m_a);
    cbc_encrypt(key, &iv, &mut plain);
    let cfg = 0x0500u16 | (((plain.len() / 16) as u16) << 4);
    let mut t = vec![0, 0x44];
    t.extend_from_slice(&m_a);
    t.extend_from_slice(&[0x7A, acc, 0x00]);
    t.extend_from_slice(&cfg.to_le_bytes());
    t.extend_from_slice(&plain);
    t[0] = (t.len() - 1) as u8;
    t
}

const RIGHT: [u8; 16] = *b"meterd-test-key!";
const WRONG: [u8; 16] = [0x55; 16];
const METERS: [u32; 4] = [12345678, 20000001, 20000002, 20000003];

fn key_file(s: &Scratch, key: &[u8; 16]) -> PathBuf {
    let text: String = METERS
        .iter()
        .map(|m| format!("{m:08}={}\n", hex::encode(key)))
        .collect();
    let p = s.file("wmbus.keys", &text);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

fn read_count(s: &Scratch) -> usize {
    s.json(&["reads", "list", "--json"]).as_array().unwrap().len()
}

/// Telegrams under a wrong key are quarantined with the decryption failure; once the key file
/// holds the right key and the daemon restarted, `quarantine retry --all` turns each into one
/// read (VEE ran: unknown meters are held for review), a second retry makes none, and the
/// audit trail verifies.
#[test]
fn retry_after_a_key_fix_reads_each_telegram_exactly_once() {
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    let keys = key_file(&s, &WRONG);
    let extra = format!(
        "wmbus_key_file = \"{}\"\n[access]\nclerks = {{ users = [\"nobody\"] }}\n\
         [daemon]\ncontrol_socket_mode = \"0666\"\n",
        keys.display()
    );
    let cfg = config(&s, &broker, "meterd-retry", &extra);
    s.share();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::create_dir_all(s.data_dir()).unwrap();
        std::fs::set_permissions(s.data_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);

    let msgs: Vec<(String, Vec<u8>)> = METERS
        .iter()
        .enumerate()
        .map(|(i, &m)| {
            (
                format!("meters/gw{}/raw", i % 2),
                telegram(m, 0x10 + i as u8, 1000 * (i as u32 + 1) + 7, &RIGHT),
            )
        })
        .collect();
    publish_all(broker.port, &msgs);
    d.wait_until("the telegrams quarantined", Duration::from_secs(20), || {
        list(&s, &[])["entries"].as_array().unwrap().len() == METERS.len()
    });
    let entries = list(&s, &[])["entries"].as_array().unwrap().clone();
    for e in &entries {
        let reason = e["reason"].as_str().unwrap();
        assert!(
            reason.contains("refused: decrypted data does not start with 2F 2F"),
            "{reason}"
        );
        assert_eq!(e["state"], "open");
    }
    assert_eq!(read_count(&s), 0);

    // Still the wrong key: a retry changes nothing.
    let first = entries[0]["id"].as_u64().unwrap().to_string();
    let err = failed(
        &["quarantine", "retry", &first],
        s.run(&["quarantine", "retry", &first]),
    );
    assert!(err.contains("still undecodable"), "{err}");
    // A clerk reads the quarantine but may not retry it.
    let o = s.run_as(NOBODY, &["quarantine", "list"]);
    assert!(o.status.success(), "{o:?}");
    let o = s.run_as(NOBODY, &["quarantine", "retry", "--all"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && err.contains("needs the supervisor role"),
        "{err}"
    );

    // The key fixed while the daemon is stopped, retried by hand (the daemon would retry them
    // itself when it loads the keys: see the SIGHUP test below), then the daemon started.
    d.stop();
    key_file(&s, &RIGHT);
    let out = s.json(&["quarantine", "retry", "--all", "--json"]);
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);
    assert_eq!(out["retried"], METERS.len(), "{out}");
    assert_eq!(out["resolved"], METERS.len(), "{out}");
    assert_eq!(out["reads"], METERS.len(), "{out}");
    let reads = s.json(&["reads", "list", "--json"]);
    let mut got: Vec<(String, String)> = reads
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["meter_id"].as_str().unwrap().to_owned(), r["value"].to_string()))
        .collect();
    got.sort();
    let mut want: Vec<(String, String)> = METERS
        .iter()
        .enumerate()
        .map(|(i, m)| (format!("wmbus:{m:08}"), format!("{}.007", i + 1)))
        .collect();
    want.sort();
    assert_eq!(got, want, "{reads}");
    for r in reads.as_array().unwrap() {
        // VEE ran: a radio endpoint mapped to no meter is held for review.
        assert_eq!(r["status"], "flagged", "{r}");
    }

    // Again: everything resolved, nothing new; one entry by id says so.
    let out = s.json(&["quarantine", "retry", "--all", "--json"]);
    assert_eq!(
        (out["retried"].as_u64(), out["reads"].as_u64()),
        (Some(0), Some(0)),
        "{out}"
    );
    let again = s.ok(&["quarantine", "retry", &first]);
    assert!(again.contains("retried before"), "{again}");
    assert_eq!(read_count(&s), METERS.len());
    for e in list(&s, &[])["entries"].as_array().unwrap() {
        assert_eq!(e["state"], "resolved", "{e}");
        assert_eq!(e["resolution"]["reads"].as_array().unwrap().len(), 1, "{e}");
    }
    let shown = s.ok(&["quarantine", "show", &first]);
    assert!(
        shown.contains("(resolved)") && shown.contains("gateway   gw0") && shown.contains("reads     "),
        "{shown}"
    );
    assert!(s.ok(&["audit", "verify"]).contains("audit trail intact"));
    d.stop();
    // The same through the store directly, daemon stopped: still nothing new.
    let out = s.json(&["quarantine", "retry", "--all", "--json"]);
    assert_eq!(out["retried"], 0, "{out}");
    assert_eq!(read_count(&s), METERS.len());
}

fn write_keys(s: &Scratch, keys: &[(u32, [u8; 16])]) -> PathBuf {
    let text: String = keys
        .iter()
        .map(|(m, k)| format!("{m:08}={}\n", hex::encode(k)))
        .collect();
    let p = s.file("wmbus.keys", &text);
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
    p
}

/// Issue 16 (wmbusmeters #2062): one meter's key is wrong, another's is missing. Their
/// telegrams are quarantined with the key reason, told apart; the key file is corrected (the
/// configuration file is not touched) and the daemon gets SIGHUP: the next telegram of each
/// meter decodes, and the quarantined ones are decoded again and stored, each once.
#[test]
fn keys_corrected_on_sighup_decode_the_next_and_the_quarantined_telegrams() {
    const A: u32 = 31000001;
    const B: u32 = 31000002;
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    let keys = write_keys(&s, &[(A, WRONG)]);
    let extra = format!("wmbus_key_file = \"{}\"\n", keys.display());
    let cfg = config(&s, &broker, "meterd-rekey", &extra);
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);
    publish_all(
        broker.port,
        &[
            ("meters/gw1/raw".into(), telegram(A, 0x01, 1_007, &RIGHT)),
            ("meters/gw1/raw".into(), telegram(B, 0x01, 2_007, &RIGHT)),
        ],
    );
    d.wait_until("both telegrams quarantined", Duration::from_secs(20), || {
        list(&s, &[])["entries"].as_array().unwrap().len() == 2
    });
    let mut reasons: Vec<String> = list(&s, &[])["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap().to_owned())
        .collect();
    reasons.sort();
    assert!(
        reasons[0].starts_with("key for meter 31000001 refused: decrypted data does not start with 2F 2F"),
        "{reasons:?}"
    );
    assert_eq!(reasons[1], "no key for meter 31000002 (mode 5)");
    assert_eq!(read_count(&s), 0);

    // The key file corrected, the configuration file untouched; SIGHUP.
    write_keys(&s, &[(A, RIGHT), (B, RIGHT)]);
    let before = d.count(subscribed);
    d.hup();
    d.wait_until(
        "the MQTT component restarted with the new keys",
        Duration::from_secs(20),
        || d.count(subscribed) > before,
    );
    assert!(
        d.log().contains("telegrams held for a wM-Bus key decoded again"),
        "{}",
        d.log()
    );
    publish_all(
        broker.port,
        &[
            ("meters/gw1/raw".into(), telegram(A, 0x02, 1_107, &RIGHT)),
            ("meters/gw1/raw".into(), telegram(B, 0x02, 2_107, &RIGHT)),
        ],
    );
    d.wait_until("four reads", Duration::from_secs(20), || read_count(&s) == 4);
    let reads = s.json(&["reads", "list", "--json"]);
    let mut got: Vec<(String, String)> = reads
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["meter_id"].as_str().unwrap().to_owned(), r["value"].to_string()))
        .collect();
    got.sort();
    assert_eq!(
        got,
        [
            ("wmbus:31000001".to_owned(), "1.007".to_owned()),
            ("wmbus:31000001".to_owned(), "1.107".to_owned()),
            ("wmbus:31000002".to_owned(), "2.007".to_owned()),
            ("wmbus:31000002".to_owned(), "2.107".to_owned()),
        ],
        "{reads}"
    );
    for e in list(&s, &[])["entries"].as_array().unwrap() {
        assert_eq!(e["state"], "resolved", "{e}");
        assert_eq!(e["resolution"]["by"], "meterd (keys loaded)", "{e}");
    }
    // Another reload with the same keys: nothing more is stored.
    let reloaded = |l: &str| l.contains("configuration reloaded");
    assert_eq!(d.count(reloaded), 1);
    assert!(d.log().contains(r#"restarted=["mqtt"]"#), "{}", d.log());
    d.hup();
    d.wait_until("the second reload", Duration::from_secs(20), || d.count(reloaded) == 2);
    let log = d.log();
    let last = log.lines().rfind(|l| reloaded(l)).unwrap();
    assert!(
        last.contains("restarted=[]"),
        "an unchanged key file restarts nothing: {last}"
    );
    assert_eq!(read_count(&s), 4);
    d.stop();
}

/// list filters (source, reason, since), JSON, show (hex, text, topic, gateway, digest), a
/// large payload kept by reference, purge --before into the summary.
#[test]
fn list_show_and_purge() {
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    let cfg = config(&s, &broker, "meterd-qlist", "");
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);
    let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
    publish_all(
        broker.port,
        &[
            ("meters/gwA/raw".into(), b"hello\x01world".to_vec()),
            ("meters/gwB/raw".into(), b"F95306F0086A1840EA0C101A".to_vec()),
            ("meters/gwB/raw".into(), big.clone()),
        ],
    );
    d.wait_until("three entries", Duration::from_secs(20), || {
        list(&s, &[])["entries"].as_array().unwrap().len() == 3
    });
    let all = list(&s, &[]);
    let ids: Vec<u64> = all["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_u64().unwrap())
        .collect();
    let only_b = list(&s, &["--source", "gwB"]);
    assert_eq!(only_b["entries"].as_array().unwrap().len(), 2, "{only_b}");
    let bch = list(&s, &["--reason", "bch"]);
    let bch = bch["entries"].as_array().unwrap();
    assert_eq!(bch.len(), 1);
    assert!(bch[0]["reason"].as_str().unwrap().contains("BCH"), "{bch:?}");
    let future = list(&s, &["--since", "2999-01-01"]);
    assert_eq!(future["entries"].as_array().unwrap().len(), 0);
    let today = list(
        &s,
        &["--since", &jiff::Timestamp::now().strftime("%Y-%m-%d").to_string()],
    );
    assert_eq!(today["entries"].as_array().unwrap().len(), 3);
    let err = failed(
        &["quarantine", "list", "--since", "yesterday"],
        s.run(&["quarantine", "list", "--since", "yesterday"]),
    );
    assert!(err.contains("neither YYYY-MM-DD nor an RFC 3339 time"), "{err}");

    // show: hex and text, where it came from, the digest; the large payload by reference.
    let text = s.ok(&["quarantine", "show", &ids[0].to_string()]);
    assert!(
        text.contains("topic     meters/gwA/raw")
            && text.contains("gateway   gwA")
            && text.contains("68 65 6c 6c 6f 01 77 6f")
            && text.contains("|hello.world|")
            && text.contains(r"hello\u{1}world"),
        "{text}"
    );
    let large = s.json(&["quarantine", "show", &ids[2].to_string(), "--json"]);
    assert_eq!(large["size"], 10_000);
    assert_eq!(large["kept_bytes"], 4096);
    assert_eq!(large["head_only"], true);
    assert_eq!(large["hex"].as_str().unwrap(), hex::encode(&big[..4096]));
    use sha2::Digest;
    assert_eq!(
        large["sha256"].as_str().unwrap(),
        hex::encode(sha2::Sha256::digest(&big))
    );
    let err = failed(
        &["quarantine", "retry"],
        s.run(&["quarantine", "retry", &ids[2].to_string()]),
    );
    assert!(err.contains("only the first 4096 of 10000 bytes were kept"), "{err}");
    let err = failed(&["quarantine", "show"], s.run(&["quarantine", "show", "999999"]));
    assert!(err.contains("quarantine entry 999999 not found"), "{err}");

    // purge: nothing before yesterday; everything before tomorrow, counted in the summary.
    let out = s.ok(&["quarantine", "purge", "--before", "2000-01-01"]);
    assert!(out.contains("purged 0 entries"), "{out}");
    let tomorrow = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24)).to_string();
    let out = s.ok(&["quarantine", "purge", "--before", &tomorrow]);
    assert!(out.contains("purged 3 entries"), "{out}");
    let after = list(&s, &[]);
    assert_eq!(after["entries"].as_array().unwrap().len(), 0);
    assert_eq!(after["usage"]["entries"], 0);
    assert_eq!(after["usage"]["bytes"], 0);
    let summarised: u64 = after["summarised"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["count"].as_u64().unwrap())
        .sum();
    assert_eq!(summarised, 3, "{after}");
    let text = s.ok(&["quarantine", "list"]);
    assert!(text.contains("older entries summarised: 3 entries"), "{text}");
    d.stop();
}

/// 100,000 garbage messages published as fast as the broker takes them, with `max_mib = 1`:
/// the quarantine's stored bytes never exceed the limit, and the summary counts plus the
/// entries still listed are exactly the messages sent.
#[test]
fn retention_bounds_the_quarantine_under_a_flood_of_garbage() {
    const SENT: usize = 100_000;
    let broker = mosquitto::start(false);
    let s = Scratch::new();
    let cfg = config(&s, &broker, "meterd-flood", "[quarantine]\nmax_mib = 1\n");
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);
    let mut rng = rand::rngs::StdRng::seed_from_u64(100_000);
    let mut usage_seen = Vec::new();
    for chunk in 0..10 {
        let msgs: Vec<(String, Vec<u8>)> = (0..SENT / 10)
            .map(|i| {
                let n = chunk * (SENT / 10) + i;
                let noise: String = (0..rng.random_range(10..150))
                    .map(|_| rng.random_range(b'g'..=b'z') as char)
                    .collect();
                (
                    format!("meters/gw{}/raw", n % 3),
                    format!("garbage {n} {noise}").into_bytes(),
                )
            })
            .collect();
        publish_all(broker.port, &msgs);
        let usage = list(&s, &["--limit", "1"])["usage"].clone();
        assert!(usage["bytes"].as_u64().unwrap() <= 1 << 20, "{usage}");
        usage_seen.push(usage);
    }
    // Everything published was acked by the broker; wait until meterd committed it all.
    let total = |v: &serde_json::Value| {
        v["matching"].as_u64().unwrap()
            + v["summarised"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["count"].as_u64().unwrap())
                .sum::<u64>()
    };
    d.wait_until("every message committed", Duration::from_secs(300), || {
        total(&list(&s, &["--limit", "1"])) >= SENT as u64
    });
    let end = list(&s, &["--limit", "1"]);
    assert_eq!(total(&end), SENT as u64, "{end}");
    let usage = &end["usage"];
    assert!(usage["bytes"].as_u64().unwrap() <= 1 << 20, "{usage}");
    assert!(usage["entries"].as_u64().unwrap() < 20_000, "{usage}");
    assert_eq!(end["matching"], usage["entries"]);
    // One summary row per gateway topic and reason class, not one per message.
    let rows = end["summarised"].as_array().unwrap();
    assert_eq!(rows.len(), 3, "{rows:?}");
    let store = std::fs::metadata(s.data_dir().join("meterd.redb")).unwrap().len();
    eprintln!(
        "flood: {SENT} messages; quarantine now {usage}; store file {} MiB; usage after each 10,000: {usage_seen:?}",
        store >> 20
    );
    let text = s.ok(&["quarantine", "list", "--limit", "3"]);
    assert!(text.contains("older entries summarised: "), "{text}");
    d.stop();
}
