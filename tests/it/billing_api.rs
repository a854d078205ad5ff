//! The billing API over a real socket: axum served on 127.0.0.1:0, reqwest as the client.

use std::collections::BTreeSet;
use std::sync::Arc;

use jiff::Timestamp;
use meterd::billing::http::{ApiState, HttpConfig, serve};
use meterd::billing::tokens;
use meterd::ingest::accept_reads;
use meterd::model::{Meter, MeterStatus, Origin, Quantity, Read, ReadStatus, ReadType, Service};
use meterd::store::{RedbStore, Rules, Store};
use meterd::vee::VeeConfig;
use meterd_protocols::cmep;
use meterd_protocols::fixed_width::Layout;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

struct Api {
    _dir: tempfile::TempDir,
    store: Arc<RedbStore>,
    base: String,
    http: reqwest::Client,
    stop: CancellationToken,
    addr: std::net::SocketAddr,
}

impl Drop for Api {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn meter(id: &str) -> Meter {
    Meter {
        meter_id: id.into(),
        account: format!("ACC-{id}"),
        route: "R01".into(),
        sequence: 1,
        service: Service::Water,
        unit: "gal".into(),
        dials: 8,
        decimals: 0,
        multiplier: Quantity::from_units(1).unwrap(),
        status: MeterStatus::Active,
        address: "1 Main St".into(),
        notes: String::new(),
    }
}

/// `n` meters with one first read each (first reads validate: no history to compare).
fn seed(store: &dyn Store, n: usize) {
    let mut txn = store.begin_write().unwrap();
    for i in 0..n {
        txn.put_meter(&meter(&format!("M{i:05}"))).unwrap();
    }
    txn.commit().unwrap();
    let at: Timestamp = "2026-11-02T13:45:00Z".parse().unwrap();
    let reads = (0..n)
        .map(|i| Read {
            meter_id: format!("M{i:05}"),
            read_at: at,
            value: Quantity::from_units(1000 + i as i64).unwrap(),
            raw: (1000 + i).to_string(),
            read_type: ReadType::Manual,
            codes: vec![],
            reader: None,
            origin: Origin::file_line("t.csv", i as u64 + 1),
        })
        .collect();
    let report = accept_reads(store, &VeeConfig::default(), reads).unwrap();
    assert_eq!(report.validated, n as u64);
}

async fn start(n: usize, tls: Option<meterd::billing::http::TlsConfig>) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(RedbStore::open_dir(dir.path()).unwrap());
    seed(store.as_ref(), n);
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let state = ApiState::new(store.clone(), &HttpConfig::default()).unwrap();
    let stop = CancellationToken::new();
    let scheme = if tls.is_some() { "https" } else { "http" };
    tokio::spawn(serve(listener, tls, state, stop.clone()));
    Api {
        _dir: dir,
        store,
        base: format!("{scheme}://127.0.0.1:{}", addr.port()),
        http: reqwest::Client::new(),
        stop,
        addr,
    }
}

impl Api {
    fn token(&self, name: &str) -> String {
        tokens::create(self.store.as_ref(), name, Timestamp::now()).unwrap()
    }

    async fn get(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .get(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, token: &str, path: &str) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    async fn json(&self, token: &str, path: &str) -> Value {
        let r = self.get(token, path).await;
        assert_eq!(r.status(), 200, "{path}");
        r.json().await.unwrap()
    }
}

fn read_ids(batch: &Value) -> Vec<u64> {
    batch["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["read_id"].as_u64().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_clients_pulling_concurrently_never_get_the_same_read() {
    let api = start(600, None).await;
    let (a, b) = (api.token("cis-a"), api.token("cis-b"));
    let pull_all = |token: String| {
        let api = &api;
        async move {
            let mut got = Vec::new();
            loop {
                let r = api.get(&token, "/v1/batches/next?max=37&format=json").await;
                if r.status() == 204 {
                    return got;
                }
                assert_eq!(r.status(), 200);
                let id = r.headers()["x-batch-id"].to_str().unwrap().to_owned();
                let batch: Value = r.json().await.unwrap();
                assert_eq!(batch["id"].to_string(), id);
                got.extend(read_ids(&batch));
                let ack = api.post(&token, &format!("/v1/batches/{id}/ack")).await;
                assert_eq!(ack.status(), 200);
            }
        }
    };
    let (ga, gb) = tokio::join!(pull_all(a.clone()), pull_all(b.clone()));
    assert!(
        !ga.is_empty() && !gb.is_empty(),
        "both clients got reads: {} / {}",
        ga.len(),
        gb.len()
    );
    let sa: BTreeSet<u64> = ga.iter().copied().collect();
    let sb: BTreeSet<u64> = gb.iter().copied().collect();
    assert_eq!(sa.len(), ga.len(), "client a got a read twice");
    assert_eq!(sb.len(), gb.len(), "client b got a read twice");
    assert!(sa.is_disjoint(&sb), "a read went to both clients");
    assert_eq!(sa.len() + sb.len(), 600);
    let txn = api.store.begin_read().unwrap();
    let exported = txn
        .count_reads_by_status()
        .unwrap()
        .into_iter()
        .find(|(s, _)| *s == ReadStatus::Exported)
        .unwrap()
        .1;
    assert_eq!(exported, 600);
    // Each client sees only its own batches.
    let la = api.json(&a, "/v1/batches?status=acked").await;
    let lb = api.json(&b, "/v1/batches").await;
    let ids = |v: &Value| {
        v["batches"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| b["id"].as_u64().unwrap())
            .collect::<BTreeSet<_>>()
    };
    assert!(ids(&la).is_disjoint(&ids(&lb)));
    assert_eq!(
        api.json(&a, "/v1/batches?status=open").await["batches"]
            .as_array()
            .unwrap()
            .len(),
        0
    );
}

/// Send a request by hand and hang up after the first bytes of the answer (a client crash).
async fn crash_mid_response(addr: std::net::SocketAddr, token: &str, path: &str) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = s.read(&mut buf).await.unwrap();
    assert!(
        buf[..n].starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&buf[..n])
    );
    drop(s);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_crashes_before_ack_gets_the_same_batch_and_ack_twice_is_harmless() {
    let api = start(50, None).await;
    let t = api.token("cis");
    crash_mid_response(api.addr, &t, "/v1/batches/next?max=20&format=csv").await;
    let first = api.get(&t, "/v1/batches/next?max=20&format=csv").await;
    assert_eq!(first.status(), 200);
    let id = first.headers()["x-batch-id"].to_str().unwrap().to_owned();
    let first = first.bytes().await.unwrap();
    assert_eq!(first.iter().filter(|b| **b == b'\n').count(), 21, "header + 20 reads");
    // A clerk edits a read of the open batch: the batch as handed out does not change.
    let edited_id = {
        let txn = api.store.begin_read().unwrap();
        txn.batch(id.parse().unwrap()).unwrap().unwrap().read_ids[3]
    };
    edit(api.store.as_ref(), edited_id, 77, Some("dial misread"));
    // A different max, asked again: the same batch, byte for byte.
    let again = api.get(&t, "/v1/batches/next?max=5&format=csv").await;
    assert_eq!(again.headers()["x-batch-id"].to_str().unwrap(), id);
    assert_eq!(again.bytes().await.unwrap(), first);
    assert_eq!(
        api.get(&t, &format!("/v1/batches/{id}?format=csv"))
            .await
            .bytes()
            .await
            .unwrap(),
        first
    );

    let ack1: Value = api
        .post(&t, &format!("/v1/batches/{id}/ack"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(ack1["already_acked"], false);
    assert_eq!(ack1["reads"], 20);
    let ack2 = api.post(&t, &format!("/v1/batches/{id}/ack")).await;
    assert_eq!(ack2.status(), 200);
    assert_eq!(ack2.json::<Value>().await.unwrap()["already_acked"], true);
    assert_eq!(api.post(&t, "/v1/batches/999/ack").await.status(), 404);

    // The next batch: the other 30 reads, and the edit as a correction (not a 31st read).
    let next = api.json(&t, "/v1/batches/next?format=json").await;
    assert_ne!(next["id"].to_string(), id);
    let ids = read_ids(&next);
    assert_eq!(ids.len(), 30);
    assert!(!ids.contains(&edited_id));
    let c = &next["corrections"][0];
    assert_eq!(next["corrections"].as_array().unwrap().len(), 1);
    assert_eq!(c["read_id"].as_u64(), Some(edited_id));
    assert_eq!(c["original_batch"].to_string(), id);
    assert_eq!(c["old_value"].as_i64(), Some(1000 + (edited_id as i64 - 1)));
    assert_eq!(c["new_value"], 77);
    assert_eq!(c["reason"], "dial misread");
    let next_id = next["id"].as_u64().unwrap();
    api.post(&t, &format!("/v1/batches/{next_id}/ack")).await;
    assert_eq!(
        api.get(&t, "/v1/batches/next").await.status(),
        204,
        "every read billed once; the correction once"
    );
    assert_eq!(
        api.store.begin_read().unwrap().read(edited_id).unwrap().unwrap().status,
        ReadStatus::Exported
    );
}

/// Change a read's value through the store, as the clerk review does.
fn edit(store: &dyn Store, id: u64, value: i64, reason: Option<&str>) {
    let mut txn = store.begin_write().unwrap();
    let mut r = txn.read(id).unwrap().unwrap();
    r.read.value = Quantity::from_units(value).unwrap();
    r.status = ReadStatus::Edited;
    txn.update_read(&r, Timestamp::now()).unwrap();
    if let Some(reason) = reason {
        meterd::billing::note_change(txn.as_mut(), id, reason, Some("clerk1"), Timestamp::now()).unwrap();
    }
    txn.commit().unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_changed_or_rejected_after_export_come_back_as_corrections() {
    let api = start(5, None).await;
    let (t, other) = (api.token("cis"), api.token("other"));
    let b1 = api.json(&t, "/v1/batches/next").await;
    let ids = read_ids(&b1);
    api.post(&t, &format!("/v1/batches/{}/ack", b1["id"])).await;
    // Edited without a reason (plain store update), and rejected.
    edit(api.store.as_ref(), ids[0], 5, None);
    {
        let mut txn = api.store.begin_write().unwrap();
        let mut r = txn.read(ids[1]).unwrap().unwrap();
        r.status = ReadStatus::Rejected;
        txn.update_read(&r, Timestamp::now()).unwrap();
        txn.commit().unwrap();
    }
    // The reason given before the change (the other order of calls) is kept with the value billed.
    {
        let mut txn = api.store.begin_write().unwrap();
        meterd::billing::note_change(txn.as_mut(), ids[2], "customer photo", None, Timestamp::now()).unwrap();
        let mut r = txn.read(ids[2]).unwrap().unwrap();
        r.read.value = Quantity::from_units(9).unwrap();
        r.status = ReadStatus::Edited;
        txn.update_read(&r, Timestamp::now()).unwrap();
        txn.commit().unwrap();
    }
    // Edited, then edited back to what was billed: nothing to correct.
    let original = b1["reads"][3]["value"].as_i64().unwrap();
    edit(api.store.as_ref(), ids[3], 1, Some("oops"));
    edit(api.store.as_ref(), ids[3], original, Some("undo"));
    // The corrections go to the client that billed the reads, not to another one.
    assert_eq!(api.get(&other, "/v1/batches/next").await.status(), 204);
    let csv = api.get(&t, "/v1/batches/next?format=csv").await.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(
        rows[3].starts_with("correction,")
            && rows[3].contains(",9,gal,")
            && rows[3].ends_with(&format!(",{},1002,customer photo", b1["id"])),
        "{csv}"
    );
    assert_eq!(
        api.store.begin_read().unwrap().read(ids[3]).unwrap().unwrap().status,
        ReadStatus::Exported
    );
    assert!(
        rows[1].starts_with("correction,")
            && rows[1].contains(",5,gal,")
            && rows[1].ends_with(",read changed after billing"),
        "{csv}"
    );
    assert!(
        rows[2].starts_with("correction,") && rows[2].ends_with(",read rejected after billing"),
        "{csv}"
    );
    let cmep_text = api.get(&t, "/v1/batches/next?format=cmep").await.text().await.unwrap();
    let recs = cmep::parse_file(&cmep_text).unwrap();
    assert_eq!(
        (
            recs[0].purpose.as_str(),
            recs[0].triplets[0].flag.as_str(),
            recs[0].triplets[0].value.as_str()
        ),
        ("RESEND", "A", "5")
    );
    assert_eq!(
        (recs[1].triplets[0].flag.as_str(), recs[1].triplets[0].value.as_str()),
        ("N", "")
    );
    let m = api.json(&t, "/v1/meters/M00001/reads").await;
    assert_eq!(
        m["reads"][0]["status"], "rejected",
        "a rejected read stays rejected after the correction"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_changed_while_their_batch_is_open_keep_the_change_through_the_ack() {
    let api = start(3, None).await;
    let t = api.token("cis");
    let b1 = api.json(&t, "/v1/batches/next").await;
    let ids = read_ids(&b1);
    // Before billing acks: a clerk rejects one read and edits another.
    {
        let mut txn = api.store.begin_write().unwrap();
        let mut r = txn.read(ids[0]).unwrap().unwrap();
        r.status = ReadStatus::Rejected;
        txn.update_read(&r, Timestamp::now()).unwrap();
        txn.commit().unwrap();
    }
    edit(api.store.as_ref(), ids[1], 7, Some("dial misread"));
    // The open batch is not changed: asked again, it is the same.
    assert_eq!(api.json(&t, "/v1/batches/next").await, b1);
    api.post(&t, &format!("/v1/batches/{}/ack", b1["id"])).await;
    {
        let txn = api.store.begin_read().unwrap();
        let status = |id| txn.read(id).unwrap().unwrap().status;
        assert_eq!(
            status(ids[0]),
            ReadStatus::Rejected,
            "the ack does not undo a rejection"
        );
        assert_eq!(status(ids[1]), ReadStatus::Edited, "the ack does not undo an edit");
        assert_eq!(status(ids[2]), ReadStatus::Exported);
    }
    // Billing has the originals: the next batch corrects both.
    let csv = api.get(&t, "/v1/batches/next?format=csv").await.text().await.unwrap();
    let rows: Vec<&str> = csv.lines().collect();
    assert_eq!(rows.len(), 3, "{csv}");
    assert!(
        rows[1].starts_with("correction,") && rows[1].ends_with(",read rejected after billing"),
        "{csv}"
    );
    assert!(
        rows[2].starts_with("correction,") && rows[2].contains(",7,gal,") && rows[2].ends_with(",dial misread"),
        "{csv}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_wrong_or_revoked_tokens_get_401() {
    let api = start(3, None).await;
    let t = api.token("cis");
    for path in [
        "/v1/batches/next",
        "/v1/batches",
        "/v1/batches/1",
        "/v1/meters/M00000/reads",
        "/metrics",
    ] {
        let r = api.http.get(format!("{}{path}", api.base)).send().await.unwrap();
        assert_eq!(r.status(), 401, "{path} without a token");
        assert!(r.headers().contains_key("www-authenticate"));
        assert_eq!(
            api.get("mtd_wrong", path).await.status(),
            401,
            "{path} with a wrong token"
        );
        let r = api
            .http
            .get(format!("{}{path}", api.base))
            .header("authorization", format!("Basic {t}"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 401, "{path} with another scheme");
    }
    assert_eq!(
        api.http
            .post(format!("{}/v1/batches/1/ack", api.base))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        api.http
            .get(format!("{}/healthz", api.base))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(api.get(&t, "/v1/batches").await.status(), 200);
    tokens::revoke(api.store.as_ref(), "cis", Timestamp::now()).unwrap();
    assert_eq!(api.get(&t, "/v1/batches").await.status(), 401, "revoked");
    // Nothing was batched by the refused requests.
    assert_eq!(api.store.begin_read().unwrap().batches(None).unwrap().len(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cmep_and_fixed_width_batches_round_trip_through_their_parsers() {
    let api = start(40, None).await;
    let t = api.token("cis");
    let json = api.json(&t, "/v1/batches/next?format=json").await;
    let id = json["id"].as_u64().unwrap();
    let expect: Vec<(String, String, i64)> = json["reads"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["meter_id"].as_str().unwrap().to_owned(),
                r["account"].as_str().unwrap().to_owned(),
                r["value"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(expect.len(), 40);

    let r = api.get(&t, "/v1/batches/next?format=cmep").await;
    assert_eq!(r.headers()["x-batch-id"].to_str().unwrap(), id.to_string());
    let text = r.text().await.unwrap();
    assert!(text.ends_with("\r\n"));
    let recs = cmep::parse_file(&text).unwrap();
    let got: Vec<(String, String, i64)> = recs
        .iter()
        .map(|r| {
            (
                r.meter_id.clone(),
                r.receiver_customer_id.clone(),
                r.triplets[0].value.parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(got, expect);
    for r in &recs {
        assert_eq!(
            (r.units.as_str(), r.commodity.as_str(), r.purpose.as_str()),
            ("GALREG", "W", "OK")
        );
        assert_eq!(r.times().unwrap()[0].to_string(), "2026-11-02T13:45:00Z", "UTC");
        assert_eq!(
            r.encode().unwrap() + "\r\n",
            text.lines().find(|l| l.contains(&r.meter_id)).unwrap().to_owned() + "\r\n"
        );
    }

    let layout = Layout::from_toml(include_str!("../../layouts/municipal-cis.toml")).unwrap();
    let text = api
        .get(&t, "/v1/batches/next?format=municipal-cis")
        .await
        .text()
        .await
        .unwrap();
    let mut got = Vec::new();
    for line in text.split("\r\n").filter(|l| !l.is_empty()) {
        assert!(layout.is_record(line));
        let rec = layout.parse(line).unwrap();
        assert_eq!(rec.get("record"), Some("R"));
        assert_eq!(rec.canonical("read_date").unwrap().as_deref(), Some("2026-11-02"));
        assert_eq!(rec.canonical("read_time").unwrap().as_deref(), Some("13:45:00"));
        let v: f64 = rec.canonical("value").unwrap().unwrap().parse().unwrap();
        got.push((
            rec.get("meter_id").unwrap().to_owned(),
            rec.get("account").unwrap().to_owned(),
            v as i64,
        ));
    }
    assert_eq!(got, expect);
    let sensus = api
        .get(&t, "/v1/batches/next?format=sensus-autoread-export")
        .await
        .text()
        .await
        .unwrap();
    assert!(sensus.lines().all(|l| l.len() == 183));
    let bad = api.get(&t, "/v1/batches/next?format=nope").await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("municipal-cis"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn meter_history_metrics_and_health() {
    let api = start(4, None).await;
    let t = api.token("cis");
    let m = api
        .json(
            &t,
            "/v1/meters/M00002/reads?from=2026-11-01T00:00:00Z&to=2026-11-03T00:00:00Z",
        )
        .await;
    assert_eq!(m["reads"].as_array().unwrap().len(), 1);
    assert_eq!(m["reads"][0]["value"], 1002);
    let m = api.json(&t, "/v1/meters/M00002/reads?from=2026-11-03T00:00:00Z").await;
    assert_eq!(m["reads"].as_array().unwrap().len(), 0);
    assert_eq!(api.get(&t, "/v1/meters/NOPE/reads").await.status(), 404);
    assert_eq!(
        api.get(&t, "/v1/meters/M00002/reads?from=yesterday").await.status(),
        400
    );
    api.json(&t, "/v1/batches/next?max=3").await;
    let text = api.get(&t, "/metrics").await.text().await.unwrap();
    for want in [
        "meterd_reads{status=\"batched\"} 3\n",
        "meterd_reads{status=\"validated\"} 1\n",
        "meterd_flagged_reads{rule=\"high_usage\"} 0\n",
        "meterd_batches{status=\"open\"} 1\n",
        "# TYPE meterd_mqtt_sessions gauge\n",
        "# TYPE meterd_serial_sessions gauge\n",
        "# TYPE meterd_reads_ingested_total counter\n",
    ] {
        assert!(text.contains(want), "missing {want:?} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_with_a_test_certificate() {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("api.crt"), dir.path().join("api.key"));
    std::fs::write(&cert, ck.cert.pem()).unwrap();
    std::fs::write(&key, ck.signing_key.serialize_pem()).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let e = meterd::billing::http::tls_config(&cert, &key).await.unwrap_err();
    assert!(
        format!("{e:#}").contains("chmod 600"),
        "a readable key is refused: {e:#}"
    );
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let tls = meterd::billing::http::tls_config(&cert, &key).await.unwrap();
    let mut api = start(2, Some(tls)).await;
    let root = reqwest::Certificate::from_pem(ck.cert.pem().as_bytes()).unwrap();
    api.http = reqwest::Client::builder()
        .tls_certs_only([root])
        .resolve("localhost", api.addr)
        .build()
        .unwrap();
    api.base = format!("https://localhost:{}", api.addr.port());
    let t = api.token("cis");
    let b = api.json(&t, "/v1/batches/next").await;
    assert_eq!(read_ids(&b).len(), 2);
    // Plain HTTP to the TLS port gets no answer.
    assert!(
        reqwest::get(format!("http://127.0.0.1:{}/healthz", api.addr.port()))
            .await
            .is_err()
    );
    // A client that does not trust the certificate refuses it.
    let untrusting = reqwest::Client::builder()
        .tls_certs_only([])
        .resolve("localhost", api.addr)
        .build()
        .unwrap();
    assert!(untrusting.get(format!("{}/healthz", api.base)).send().await.is_err());
}

/// Collects log output in memory.
#[derive(Clone, Default)]
struct LogBuf(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuf {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn refused_requests_are_logged_with_address_and_path_never_the_token() {
    let log = LogBuf::default();
    let w = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_ansi(false)
        .with_writer(move || w.clone())
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let api = start(1, None).await;
    let good = api.token("cis");
    // The good token with its last character changed (to anything but what it was).
    let last = if good.ends_with('0') { '1' } else { '0' };
    let wrong = format!("{}{last}", &good[..good.len() - 1]);
    assert_eq!(api.get(&wrong, "/v1/batches/next?format=csv").await.status(), 401);
    assert_eq!(api.get(&good, "/v1/batches").await.status(), 200);
    let text = String::from_utf8(log.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("WARN") && text.contains("without a valid token"),
        "{text}"
    );
    assert!(
        text.contains("path=\"/v1/batches/next\"") && text.contains("remote=127.0.0.1:"),
        "{text}"
    );
    assert!(
        !text.contains(&good[4..20]) && !text.contains(&wrong[4..20]),
        "no token in the log: {text}"
    );
    assert_eq!(text.matches("without a valid token").count(), 1, "{text}");
}
