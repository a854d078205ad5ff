//! MQTT over TLS (`mqtts://`) against a real mosquitto with a TLS listener, certificates made
//! here with rcgen: the client-certificate login works end to end (simulated gateway → broker →
//! `meterd run` → store), and a broker certificate that does not verify is refused with its
//! reason at every attempt, never downgraded to plain TCP.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, date_time_ymd};

use crate::common::Scratch;
use crate::common::daemon::Daemon;
use crate::common::mqtt::{assert_stored_exactly_once, subscribed, transmissions};
use meterd::simulate::broker::Mosquitto;
use meterd::store::{RedbStore, Store};

/// The certificates of one test, in a directory the `mosquitto` user can read.
struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    fn new() -> Self {
        let dir = tempfile::Builder::new().prefix("meterd-pki-").tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        Pki { dir }
    }

    fn write(&self, name: &str, text: &str, mode: u32) -> PathBuf {
        let p = self.dir.path().join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    /// A CA; its certificate written as `NAME.pem`.
    fn ca(&self, name: &str) -> CertifiedIssuer<'static, KeyPair> {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, format!("meterd test {name}"));
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        self.write(&format!("{name}.pem"), &ca.pem(), 0o644);
        ca
    }

    /// A leaf certificate for `names` signed by `ca`: `NAME.pem` and `NAME.key` (`key_mode`).
    fn leaf(
        &self,
        name: &str,
        names: &[&str],
        ca: &CertifiedIssuer<'static, KeyPair>,
        expired: bool,
        key_mode: u32,
    ) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        if expired {
            params.not_before = date_time_ymd(2020, 1, 1);
            params.not_after = date_time_ymd(2021, 1, 1);
        }
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, ca).unwrap();
        (
            self.write(&format!("{name}.pem"), &cert.pem(), 0o644),
            self.write(&format!("{name}.key"), &key.serialize_pem(), key_mode),
        )
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

/// A mosquitto whose only listener is TLS with `server` as its certificate, clients' certificates
/// required and checked against `ca.pem`.
fn tls_broker(pki: &Pki, server: &str) -> Mosquitto {
    let listener = format!(
        "cafile {}\ncertfile {}\nkeyfile {}\nrequire_certificate true\n",
        pki.path("ca.pem").display(),
        pki.path(&format!("{server}.pem")).display(),
        pki.path(&format!("{server}.key")).display(),
    );
    Mosquitto::start_with(false, &listener)
        .expect("starting mosquitto")
        .expect("mosquitto is not installed")
}

fn config(s: &Scratch, broker: &Mosquitto, client_id: &str, tls: &str) -> PathBuf {
    s.file(
        "meterd.toml",
        &format!(
            "[mqtt]\nbroker = \"{}\"\nclient_id = \"{client_id}\"\ntopics = [\"meters/+/rtlamr\", \"meters/+/raw\"]\n\
             batch_latency_ms = 10\nkeep_alive_secs = 5\n{tls}",
            broker.tls_url()
        ),
    )
}

/// The client key owned by the test user and owner-only, as meterd requires.
fn client_key(s: &Scratch, pki: &Pki) -> PathBuf {
    let key = s.dir.path().join("client.key");
    std::fs::copy(pki.path("client.key"), &key).unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    key
}

/// `meterd simulate gateway` to `broker` over TLS with the client certificate, `rest` its other
/// flags.
fn simulate_over_tls(s: &Scratch, broker: &Mosquitto, pki: &Pki, key: &Path, rest: &[&str]) -> std::process::Command {
    let (ca, cert) = (pki.path("ca.pem"), pki.path("client.pem"));
    let mut args = vec!["simulate", "gateway", "--broker"];
    let url = broker.tls_url();
    args.push(&url);
    args.extend([
        "--ca-file",
        ca.to_str().unwrap(),
        "--cert-file",
        cert.to_str().unwrap(),
        "--key-file",
        key.to_str().unwrap(),
        "--server-name",
        "broker.test",
    ]);
    args.extend_from_slice(rest);
    s.cmd(&args)
}

fn tls_keys(pki: &Pki, key: &Path, ca: &str, server_name: &str) -> String {
    format!(
        "ca_file = \"{}\"\ncert_file = \"{}\"\nkey_file = \"{}\"\nserver_name = \"{server_name}\"\n",
        pki.path(ca).display(),
        pki.path("client.pem").display(),
        key.display()
    )
}

/// meterd logs in with a client certificate over TLS (the broker reached by address, its
/// certificate checked for `server_name`); the simulated gateway publishes over TLS with the
/// same settings; every transmission is stored once.
#[test]
fn client_certificate_login_over_tls() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    pki.leaf("server", &["broker.test"], &ca, false, 0o644);
    pki.leaf("client", &["meterd-client"], &ca, false, 0o600);
    let broker = tls_broker(&pki, "server");
    let s = Scratch::new();
    let key = client_key(&s, &pki);
    let cfg = config(
        &s,
        &broker,
        "meterd-tls",
        &tls_keys(&pki, &key, "ca.pem", "broker.test"),
    );

    // check-config loads the files; a key others can read is refused, as every secret is.
    s.ok(&["--config", cfg.to_str().unwrap(), "check-config", "--quiet"]);
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let err = s.fails(&["--config", cfg.to_str().unwrap(), "check-config", "--quiet"]);
    assert!(err.contains("mqtt.key_file") && err.contains("chmod 600"), "{err}");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();

    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);

    let manifest = s.dir.path().join("manifest.ndjson");
    let out = simulate_over_tls(
        &s,
        &broker,
        &pki,
        &key,
        &[
            "--meters",
            "50",
            "--rate",
            "0",
            "--count",
            "300",
            "--corrupt-rate",
            "0",
            "--client-id",
            "sim-tls",
            "--manifest",
            manifest.to_str().unwrap(),
        ],
    )
    .output()
    .unwrap();
    assert!(
        out.status.success(),
        "simulator failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let want = transmissions(&manifest);
    assert!(!want.is_empty());
    d.wait_until("every transmission stored", Duration::from_secs(30), || {
        d.sum("mqtt: committed", "messages") >= 300
    });
    d.stop();

    let store = RedbStore::open_dir(&s.data_dir()).unwrap();
    let stored = store.begin_read().unwrap().all_reads().unwrap();
    let got: std::collections::HashSet<(String, String)> = stored
        .iter()
        .map(|r| (r.read.meter_id.clone(), r.read.raw.clone()))
        .collect();
    assert_eq!(got, want);
    assert_eq!(stored.len(), want.len(), "each transmission once");
    // Both came in through the TLS-only listener with their certificates.
    let log = broker.log();
    assert!(
        log.contains("connected from 127.0.0.1") && log.contains("as meterd-tls") && log.contains("as sim-tls"),
        "{log}"
    );
}

/// A broker certificate that does not verify: meterd never connects, and every attempt's log
/// line names the reason.
fn refused(broker: &Mosquitto, pki: &Pki, ca: &str, server_name: &str, reason: &str) {
    let s = Scratch::new();
    let key = client_key(&s, pki);
    let cfg = config(&s, broker, "meterd-refused", &tls_keys(pki, &key, ca, server_name));
    let d = Daemon::start(&s, &cfg);
    d.wait_until("two refused attempts", Duration::from_secs(20), || {
        d.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains("cannot connect") && l.contains(reason))
            .count()
            >= 2
    });
    let log = d.log();
    d.stop();
    assert!(!log.contains("connected and subscribed"), "{log}");
    assert!(log.contains("WARN"), "{log}");
}

#[test]
fn unverified_broker_certificates_are_refused_with_the_reason() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    pki.ca("other-ca");
    pki.leaf("server", &["broker.test"], &ca, false, 0o644);
    pki.leaf("expired", &["broker.test"], &ca, true, 0o644);
    pki.leaf("client", &["meterd-client"], &ca, false, 0o600);
    let broker = tls_broker(&pki, "server");
    refused(&broker, &pki, "other-ca.pem", "broker.test", "UnknownIssuer");
    refused(&broker, &pki, "ca.pem", "wrong.test", "not valid for name");
    let expired = tls_broker(&pki, "expired");
    refused(&expired, &pki, "ca.pem", "broker.test", "expired");
}

/// Username and password over TLS (no client certificate): mosquitto checks them against its
/// password file; the right password connects, a wrong one is refused.
#[test]
fn username_and_password_over_tls() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    pki.leaf("server", &["broker.test"], &ca, false, 0o644);
    let passwords = pki.path("passwords");
    let made = std::process::Command::new("mosquitto_passwd")
        .args(["-b", "-c", passwords.to_str().unwrap(), "meterd", "s3cret over tls"])
        .status()
        .unwrap();
    assert!(made.success());
    std::fs::set_permissions(&passwords, std::fs::Permissions::from_mode(0o644)).unwrap();
    let listener = format!(
        "certfile {}\nkeyfile {}\npassword_file {}\n",
        pki.path("server.pem").display(),
        pki.path("server.key").display(),
        passwords.display(),
    );
    let broker = Mosquitto::start_with(false, &listener).unwrap().unwrap();

    for (password, ok) in [("s3cret over tls", true), ("wrong", false)] {
        let s = Scratch::new();
        let file = s.file("mqtt.password", &format!("{password}\n"));
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let tls = format!(
            "ca_file = \"{}\"\nserver_name = \"broker.test\"\nusername = \"meterd\"\npassword_file = \"{}\"\n",
            pki.path("ca.pem").display(),
            file.display()
        );
        let cfg = config(&s, &broker, "meterd-password", &tls);
        let d = Daemon::start(&s, &cfg);
        if ok {
            d.wait_for("subscribed", Duration::from_secs(20), subscribed);
        } else {
            d.wait_until("two refused attempts", Duration::from_secs(20), || {
                d.lines
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|l| l.contains("cannot connect") && l.contains("NotAuthorized"))
                    .count()
                    >= 2
            });
            assert!(!d.log().contains("connected and subscribed"), "{}", d.log());
        }
        d.stop();
    }
}

/// 10,000 messages over TLS (client certificates on both sides, 2 % corrupt) with `meterd run`
/// SIGKILLed mid-stream: after its restart every PUBACKed transmission is stored exactly once
/// and every corrupt message is quarantined once, as over plain TCP.
#[test]
fn sigkill_during_10000_messages_over_tls() {
    let pki = Pki::new();
    let ca = pki.ca("ca");
    pki.leaf("server", &["broker.test"], &ca, false, 0o644);
    pki.leaf("client", &["meterd-client"], &ca, false, 0o600);
    let broker = tls_broker(&pki, "server");
    let s = Scratch::new();
    let key = client_key(&s, &pki);
    let keys = tls_keys(&pki, &key, "ca.pem", "broker.test");
    let cfg = config(&s, &broker, "meterd-tls-chaos", &format!("batch_size = 500\n{keys}"));
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(20), subscribed);

    let manifest = s.dir.path().join("manifest.ndjson");
    let sim = simulate_over_tls(
        &s,
        &broker,
        &pki,
        &key,
        &[
            "--meters",
            "300",
            "--rate",
            "2500",
            "--gateways",
            "4",
            "--count",
            "10000",
            "--corrupt-rate",
            "0.02",
            "--seed",
            "43",
            "--client-id",
            "sim-tls-chaos",
            "--manifest",
            manifest.to_str().unwrap(),
        ],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::null())
    .spawn()
    .unwrap();

    d.wait_until("some commits", Duration::from_secs(30), || {
        d.sum("mqtt: committed", "messages") >= 1500
    });
    d.kill();
    let committed_before_kill = {
        let store = RedbStore::open_dir(&s.data_dir()).unwrap();
        let txn = store.begin_read().unwrap();
        txn.count_reads().unwrap() + txn.quarantined().unwrap().len() as u64
    };
    // The broker keeps the killed session's un-acked messages; the restarted daemon resumes it.
    let d = Daemon::start(&s, &cfg);
    d.wait_for("subscribed", Duration::from_secs(30), subscribed);

    let out = sim.wait_with_output().unwrap();
    assert!(out.status.success(), "simulator failed");
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["published"], 10_000);
    let corrupt = summary["corrupt"].as_u64().unwrap();
    let want = transmissions(&manifest);
    let want_total = want.len() as u64 + corrupt;
    d.wait_until("every transmission stored", Duration::from_secs(90), || {
        committed_before_kill + d.sum("mqtt: committed", "reads") + d.sum("mqtt: committed", "quarantined")
            >= want_total
    });
    std::thread::sleep(Duration::from_secs(1));
    d.stop();

    assert_stored_exactly_once(&s.data_dir(), &manifest, corrupt);
}
