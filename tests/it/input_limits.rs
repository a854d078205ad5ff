//! The hostile probes of issue 18 against field limits, through a running daemon as its
//! clients meet it (`meterd reads import FILE` uploads the file over the control socket): a
//! 50 MB meter id, 25 million codes, a NUL in a meter id, UTF-16 with and without a byte-order
//! mark, invalid UTF-8, a 50 MB value. Each is refused with a short message naming the line and
//! the field (or the encoding), and nothing of it is stored.

use std::time::Duration;

use crate::common::daemon::Daemon;
use crate::common::{Scratch, meter_line, texts};

const READS_HEADER: &str = "meter_id,read_at,value,read_type,codes\n";
/// The longest error line a refusal may print (the issue saw one of 50 MB).
const SHORT: usize = 300;

/// A store with two meters and three reads, and a daemon on it.
fn daemon(s: &Scratch) -> Daemon {
    s.import_meters([
        meter_line("W1", "water", 6, "active"),
        meter_line("W2", "water", 6, "active"),
    ]);
    s.file(
        "reads.csv",
        &format!("{READS_HEADER}W1,2025-01-01T08:00:00Z,100,manual,\nW1,2025-02-01T08:00:00Z,400,manual,\nW2,2025-02-01T08:00:00Z,7,manual,\n"),
    );
    s.ok(&["reads", "import", "reads.csv"]);
    let file = s.file("meterd.toml", "[daemon]\nstop_deadline_secs = 10\n");
    let d = Daemon::start(s, &file);
    d.wait_for("the daemon running", Duration::from_secs(60), |l| {
        l.contains("meterd running")
    });
    d
}

/// Writes `body` as `name` (bytes, not necessarily text).
fn write(s: &Scratch, name: &str, body: &[u8]) {
    std::fs::write(s.dir.path().join(name), body).unwrap();
}

/// `meterd args` must fail with one short line on stderr containing every one of `needles`.
fn refused(s: &Scratch, args: &[&str], needles: &[&str]) -> String {
    let o = s.run(args);
    let (out, err) = texts(&o);
    assert_eq!(
        o.status.code(),
        Some(1),
        "meterd {args:?}: {out}{}",
        &err[..err.len().min(500)]
    );
    assert!(
        err.len() < SHORT,
        "meterd {args:?}: the refusal is {} bytes: {}",
        err.len(),
        &err[..err.len().min(500)]
    );
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains('\0'), "{err:?}");
    for n in needles {
        assert!(err.contains(n), "meterd {args:?}: {n:?} not in {err}");
    }
    assert!(!out.contains("committed"), "{out}");
    err
}

/// The reads and meters in the store, as the daemon lists them.
fn contents(s: &Scratch) -> (usize, usize) {
    let reads = s.json(&["reads", "list", "--json"]);
    let meters = s.json(&["meters", "list", "--json"]);
    (reads.as_array().unwrap().len(), meters.as_array().unwrap().len())
}

#[test]
fn each_hostile_reads_file_is_refused_by_field_and_line_and_nothing_is_stored() {
    let s = Scratch::new();
    let d = daemon(&s);
    let store = s.data_dir().join("meterd.redb");
    let size_before = std::fs::metadata(&store).unwrap().len();
    assert_eq!(contents(&s), (3, 2));
    let good = "W1,2025-03-01T08:00:00Z,500,manual,\n";

    // One 50 MB meter id (the upload limit is 512 MiB, so it is the field that is refused).
    let mut big = Vec::with_capacity(51 << 20);
    big.extend_from_slice(READS_HEADER.as_bytes());
    big.extend_from_slice(good.as_bytes());
    big.extend(std::iter::repeat_n(b'A', 50 << 20));
    big.extend_from_slice(b",2025-03-01T08:00:00Z,500,manual,\n");
    write(&s, "long-id.csv", &big);
    let err = refused(
        &s,
        &["reads", "import", "long-id.csv"],
        &[
            "long-id.csv, line 3, field meter_id",
            "52428800 bytes long; at most 64 are accepted",
            "\"AAAA",
        ],
    );
    assert!(err.contains("… (52428800 bytes)"), "{err}");

    // 25 million codes in one read.
    let mut codes = Vec::with_capacity(51 << 20);
    codes.extend_from_slice(READS_HEADER.as_bytes());
    codes.extend_from_slice(b"W1,2025-03-01T08:00:00Z,500,manual,");
    for _ in 0..25_000_000 {
        codes.extend_from_slice(b"X;");
    }
    codes.extend_from_slice(b"\n");
    write(&s, "codes.csv", &codes);
    refused(
        &s,
        &["reads", "import", "codes.csv"],
        &[
            "codes.csv, line 2, field codes",
            "more than 32 codes; at most 32 are accepted",
        ],
    );

    // A 50 MB value.
    let mut value = Vec::with_capacity(51 << 20);
    value.extend_from_slice(READS_HEADER.as_bytes());
    value.extend_from_slice(b"W1,2025-03-01T08:00:00Z,");
    value.extend(std::iter::repeat_n(b'9', 50 << 20));
    value.extend_from_slice(b",manual,\n");
    write(&s, "value.csv", &value);
    refused(
        &s,
        &["reads", "import", "value.csv"],
        &["value.csv, line 2, field value", "52428800 bytes long; at most 64"],
    );

    // A NUL in a meter id, escaped in the message.
    write(
        &s,
        "nul.csv",
        format!("{READS_HEADER}{good}W\01,2025-03-02T08:00:00Z,600,manual,\n").as_bytes(),
    );
    refused(
        &s,
        &["reads", "import", "nul.csv"],
        &["nul.csv, line 3, field meter_id", "U+0000", r#""W\u{0}1""#],
    );
    // A control character in a code, and an escape sequence in the reader.
    write(
        &s,
        "code.csv",
        "meter_id,read_at,value,read_type,codes,reader\nW1,2025-03-02T08:00:00Z,600,manual,SC-04;T\x07C,\nW1,2025-03-03T08:00:00Z,600,manual,,r\x1b[2J\n".as_bytes(),
    );
    refused(&s, &["reads", "import", "code.csv"], &["line 2, field codes", "U+0007"]);

    // UTF-16 as Windows writes "Unicode text", with and without the byte-order mark.
    let utf16: Vec<u8> = format!("{READS_HEADER}{good}")
        .encode_utf16()
        .flat_map(u16::to_le_bytes)
        .collect();
    write(&s, "utf16-nobom.csv", &utf16);
    refused(
        &s,
        &["reads", "import", "utf16-nobom.csv"],
        &[
            "utf16-nobom.csv, line 1",
            "UTF-16 (little-endian, without a byte-order mark",
            "save it as UTF-8",
        ],
    );
    write(&s, "utf16-bom.csv", &[&[0xFF, 0xFE][..], &utf16].concat());
    refused(
        &s,
        &["reads", "import", "utf16-bom.csv"],
        &[
            "utf16-bom.csv, line 1",
            "UTF-16 (little-endian, with a byte-order mark)",
        ],
    );
    let be: Vec<u8> = format!("{READS_HEADER}{good}")
        .encode_utf16()
        .flat_map(u16::to_be_bytes)
        .collect();
    write(&s, "utf16-be.csv", &be);
    refused(
        &s,
        &["reads", "import", "utf16-be.csv"],
        &["UTF-16 (big-endian, without"],
    );
    // Latin-1 text (not UTF-8): the line and the byte named.
    write(
        &s,
        "latin1.csv",
        &[
            READS_HEADER.as_bytes(),
            good.as_bytes(),
            b"W\xFC1,2025-03-02T08:00:00Z,600,manual,\n",
        ]
        .concat(),
    );
    refused(
        &s,
        &["reads", "import", "latin1.csv"],
        &["latin1.csv, line 3", "not valid UTF-8: byte 0xFC at byte 2 of the line"],
    );

    // An AutoRead route file with a NUL in a meter id, and one 50 MB line.
    let layout = meterd_protocols::fixed_width::sensus_autoread_import();
    let rec = layout
        .format([
            ("service_address", "1 ELM ST"),
            ("meter_id", "W\x00000001"),
            ("meter_type", "W"),
        ])
        .unwrap();
    write(&s, "route09.txt", format!("{rec}\r\n").as_bytes());
    refused(
        &s,
        &["meters", "import", "--layout", "sensus-autoread", "route09.txt"],
        &["route09.txt, line 1, field meter_id", "U+0000"],
    );
    write(&s, "route10.txt", &vec![b'x'; 50 << 20]);
    refused(
        &s,
        &["meters", "import", "--layout", "sensus-autoread", "route10.txt"],
        &["route10.txt, line 1", "record too long: 52428800 bytes"],
    );
    // A meters CSV with an address of a megabyte.
    let csv = format!(
        "{}W9,A9,R1,1,water,gal,6,0,1,active,{}\n",
        crate::common::METERS_HEADER,
        "x".repeat(1 << 20)
    );
    write(&s, "meters-long.csv", csv.as_bytes());
    refused(
        &s,
        &["meters", "import", "meters-long.csv"],
        &[
            "meters-long.csv, line 2, field address",
            "1048576 bytes long; at most 200",
        ],
    );

    // Nothing stored, the store did not grow, the log stayed small, the daemon serves on.
    assert_eq!(contents(&s), (3, 2));
    let size_after = std::fs::metadata(&store).unwrap().len();
    assert!(
        size_after <= size_before + (1 << 20),
        "the store grew from {size_before} to {size_after} bytes"
    );
    let log = d.log();
    assert!(log.len() < 1 << 20, "the daemon's log is {} bytes", log.len());
    assert!(
        !log.contains("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")
    );
    assert!(s.ok(&["audit", "verify"]).contains("audit trail intact"));
    // A good file after all that is imported.
    s.file("good.csv", &format!("{READS_HEADER}{good}"));
    assert!(s.ok(&["reads", "import", "good.csv"]).contains("committed 1 reads"));
    d.stop();
}

#[test]
fn a_command_field_over_its_limit_is_refused_by_the_daemon_with_the_limit_named() {
    let s = Scratch::new();
    let d = daemon(&s);
    let long = "R".repeat(70);
    let err = refused(
        &s,
        &["routes", "assign", &long, "--device", "REC1"],
        &["the route is 70 bytes long; at most 64 are accepted"],
    );
    assert!(err.contains(&format!("\"{}\"", "R".repeat(70))), "{err}");
    refused(
        &s,
        &[
            "meters",
            "change",
            &"M".repeat(65),
            "--at",
            "2025-03-01T00:00:00Z",
            "--install-read",
            "0",
        ],
        &["the meter is 65 bytes long; at most 64"],
    );
    refused(
        &s,
        &["tokens", "create", &"t".repeat(65)],
        &["the name is 65 bytes long; at most 64"],
    );
    d.stop();
}

/// Through a real mosquitto and `meterd run`: an envelope naming a 5000-byte gateway, a topic
/// whose gateway level is 100 bytes and a status of 2000 bytes are quarantined with the
/// reason (none vanishes, none is stored as a read or a gateway name); a good message next to
/// them is a read.
#[test]
fn mqtt_messages_over_a_limit_go_to_the_quarantine_with_the_reason() {
    use crate::common::mosquitto;
    use crate::common::mqtt::publish_all;
    use meterd::store::{RedbStore, Store};

    let broker = mosquitto::start(false);
    let s = Scratch::new();
    let cfg = s.file(
        "meterd.toml",
        &format!(
            "[mqtt]\nbroker = \"{}\"\nclient_id = \"meterd-limits\"\ntopics = [\"meters/+/raw\"]\n\
             status_topics = [\"meters/+/status\"]\nbatch_latency_ms = 10\nkeep_alive_secs = 5\n",
            broker.url()
        ),
    );
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), |l| {
        l.contains("connected and subscribed")
    });
    let scm = "F95306F008951840EA0C101A";
    let long_gateway = format!(r#"{{"gateway":"{}","hex":"{scm}"}}"#, "G".repeat(5000));
    let level = "L".repeat(100);
    let msgs = vec![
        ("meters/gw1/raw".to_owned(), long_gateway.clone().into_bytes()),
        (format!("meters/{level}/raw"), scm.as_bytes().to_vec()),
        (
            "meters/gw1/status".to_owned(),
            format!(r#"{{"status":"{}"}}"#, "s".repeat(2000)).into_bytes(),
        ),
        ("meters/gw2/raw".to_owned(), scm.as_bytes().to_vec()),
    ];
    publish_all(broker.port, &msgs);
    d.wait_until("every message committed", Duration::from_secs(30), || {
        d.sum("mqtt: committed", "messages") >= 4
    });
    d.stop();

    let store = RedbStore::open_dir(&s.data_dir()).unwrap();
    let txn = store.begin_read().unwrap();
    let reads = txn.all_reads().unwrap();
    assert_eq!(reads.len(), 1);
    assert_eq!(
        (reads[0].read.meter_id.as_str(), reads[0].read.reader.as_deref()),
        ("scm:54585868", Some("gw2"))
    );
    let q = txn.quarantined().unwrap();
    let reason_of = |source: &str| {
        q.iter()
            .find(|(_, e)| e.source == source)
            .map(|(_, e)| e.reason.clone())
            .unwrap_or_else(|| panic!("{source} not quarantined: {q:#?}"))
    };
    let r = reason_of("mqtt meters/gw1/raw");
    assert!(
        r.starts_with("gateway: 5000 bytes long; at most 64 are accepted"),
        "{r}"
    );
    let r = reason_of(&format!("mqtt meters/{level}/raw"));
    assert!(
        r.starts_with("gateway (topic level): 100 bytes long; at most 64"),
        "{r}"
    );
    let r = reason_of("mqtt meters/gw1/status");
    assert!(r.starts_with("status: 2000 bytes long; at most 32"), "{r}");
    assert_eq!(q.len(), 3, "{q:#?}");
    assert!(q.iter().all(|(_, e)| e.reason.len() < 300));
    let mut gateways: Vec<(String, Option<String>)> = txn
        .gateways()
        .unwrap()
        .into_iter()
        .map(|g| (g.gateway, g.status))
        .collect();
    gateways.sort();
    assert_eq!(
        gateways,
        [
            ("gw1".to_owned(), None),
            ("gw2".to_owned(), None),
            ("unknown".to_owned(), None)
        ]
    );
}
