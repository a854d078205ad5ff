//! Identities and roles through the real daemon, with a second, unprivileged user (`nobody`,
//! through `setpriv`), and the replay of every finding of the hostile probe of the old control
//! socket (issue 13): each is refused, the daemon keeps serving and the store stays intact.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::common::daemon::Daemon;
use crate::common::{NOBODY, Scratch, meter_line, texts};
use meterd::store::Store as _;

/// A scratch store with two meters and their reads, shared with other users, and a daemon on
/// it whose socket any local user may connect to (who may do what is `[access]`).
fn daemon(s: &Scratch, config: &str) -> Daemon {
    s.share();
    std::fs::create_dir_all(s.data_dir()).unwrap();
    std::fs::set_permissions(s.data_dir(), std::fs::Permissions::from_mode(0o755)).unwrap();
    s.import_meters([
        meter_line("W1", "water", 6, "active"),
        meter_line("W2", "water", 6, "active"),
    ]);
    s.file(
        "reads.csv",
        "meter_id,read_at,value,read_type,codes\nW1,2025-01-01T08:00:00Z,100,manual,\nW1,2025-02-01T08:00:00Z,400,manual,\nW1,2025-03-01T08:00:00Z,2400,manual,\n",
    );
    s.ok(&["reads", "import", "reads.csv"]);
    let file = s.file(
        "meterd.toml",
        &format!("[daemon]\nstop_deadline_secs = 10\ncontrol_socket_mode = \"0666\"\n{config}"),
    );
    let d = Daemon::start(s, &file);
    d.wait_for("the daemon running", Duration::from_secs(60), |l| {
        l.contains("meterd running")
    });
    d
}

fn socket(s: &Scratch) -> PathBuf {
    s.data_dir().join("control.sock")
}

#[test]
fn a_user_in_no_role_is_refused_at_connect_with_the_roles_named() {
    let s = Scratch::new();
    let d = daemon(&s, "");
    let o = s.run_as(NOBODY, &["reads", "list"]);
    let (out, err) = texts(&o);
    assert_eq!(o.status.code(), Some(1), "{out}{err}");
    assert!(out.is_empty(), "{out}");
    assert!(
        err.contains("refused: nobody (uid 65534) has no meterd role")
            && err.contains("clerks: group meterd")
            && err.contains("admins: user root")
            && err.contains("usermod -aG meterd nobody"),
        "{err}"
    );
    d.wait_for("the refusal logged", Duration::from_secs(10), |l| {
        l.contains("in no role refused") && l.contains("user=nobody") && l.contains("uid=65534")
    });
    // Never falls back to the store: nothing was opened or changed by the refused client.
    assert_eq!(s.json(&["reads", "list", "--json"]).as_array().unwrap().len(), 3);
    d.stop();
    // Without a daemon the same role check applies in process.
    let o = s.run_as(NOBODY, &["reads", "list"]);
    assert_eq!(o.status.code(), Some(1));
    assert!(texts(&o).1.contains("has no meterd role"), "{}", texts(&o).1);
}

#[test]
fn a_clerk_acts_as_itself_and_is_refused_what_needs_another_role() {
    let s = Scratch::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let d = daemon(
        &s,
        &format!("[http]\nlisten = \"127.0.0.1:{port}\"\n[access]\nclerks = {{ users = [\"nobody\"] }}\n"),
    );
    // Reads and review work, as nobody: the audit trail names the OS user.
    let held = s.json(&["review", "list", "--json"]);
    let id = held[0]["id"].as_u64().unwrap().to_string();
    let o = s.run_as(NOBODY, &["review", "note", &id, "meter behind a fence"]);
    assert!(o.status.success(), "{}", texts(&o).1);
    let audit = s.json(&["audit", "show", "--read", &id, "--json"]);
    assert_eq!(audit[0]["clerk"], "nobody");

    // Tokens need the admin role; batches the supervisor role; acting for another user, admin.
    for (args, role) in [
        (&["tokens", "create", "cis"][..], "`tokens create` needs the admin role"),
        (&["batches", "ack", "1"], "`batches ack` needs the supervisor role"),
        (
            &["review", "approve", &id, "--rev", "0"],
            "`review approve` needs the supervisor role",
        ),
        (
            &["--on-behalf-of", "ann", "review", "note", &id, "x"],
            "--on-behalf-of needs the admin role",
        ),
    ] {
        let o = s.run_as(NOBODY, args);
        let (out, err) = texts(&o);
        assert_eq!(o.status.code(), Some(1), "{args:?}: {out}");
        assert!(
            err.contains(role) && err.contains("nobody (uid 65534) is a clerk"),
            "{args:?}: {err}"
        );
    }
    assert_eq!(s.json(&["tokens", "list", "--json"]).as_array().unwrap().len(), 0);
    d.wait_for("a refusal logged with the user", Duration::from_secs(10), |l| {
        l.contains("control request refused") && l.contains("user=nobody") && l.contains("needed_role=admin")
    });

    // Counted in /metrics.
    let token = s.ok(&["tokens", "create", "ops"]).trim().to_owned();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let metrics = rt.block_on(async {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match http
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .bearer_auth(&token)
                .send()
                .await
            {
                Ok(r) if r.status() == 200 => break r.text().await.unwrap(),
                _ if Instant::now() < deadline => tokio::time::sleep(Duration::from_millis(100)).await,
                other => panic!("no metrics: {other:?}"),
            }
        }
    });
    assert!(
        metrics.contains("meterd_control_refused_total{role=\"admin\"} 2")
            && metrics.contains("meterd_control_refused_total{role=\"supervisor\"} 2"),
        "{metrics}"
    );
    d.stop();
}

#[test]
fn the_probe_findings_are_refused_and_the_store_stays_intact() {
    let s = Scratch::new();
    let d = daemon(&s, "[access]\nsupervisors = { users = [\"nobody\"] }\n");
    let store = s.data_dir().join(meterd::store::STORE_FILE);
    let counts = || s.json(&["reads", "list", "--json"]).as_array().unwrap().len();
    assert_eq!(counts(), 3);

    // 1. Export over the live store and over the control socket. The client writes the file
    //    itself: refused in the client, as the unprivileged user and as root alike.
    for (user, target, why) in [
        (Some(NOBODY), store.clone(), "is the meterd store: not replacing it"),
        (Some(NOBODY), socket(&s), "is a socket: not replacing it"),
        (None, store.clone(), "is the meterd store: not replacing it"),
        (None, socket(&s), "is a socket: not replacing it"),
        // A directory the user cannot write: refused before the batch is made.
        (Some(NOBODY), s.data_dir().join("batch.csv"), "cannot create a file in"),
    ] {
        let args = [
            "batches",
            "export",
            "--format",
            "csv",
            "--out",
            target.to_str().unwrap(),
        ];
        let o = match user {
            Some(u) => s.run_as(u, &args),
            None => s.run(&args),
        };
        let (out, err) = texts(&o);
        assert_eq!(o.status.code(), Some(1), "{target:?}: {out}");
        assert!(err.contains(why), "{target:?}: {err}");
    }
    assert!(socket(&s).exists());
    assert_eq!(
        s.json(&["batches", "list", "--json"]).as_array().unwrap().len(),
        0,
        "no batch was made for a file that cannot be written"
    );
    // The file a supervisor may write is written by them, as them.
    let o = s.run_as(
        NOBODY,
        &[
            "batches",
            "export",
            "--format",
            "csv",
            "--out",
            "/tmp/../tmp/meterd-nobody-batch.csv",
        ],
    );
    assert!(o.status.success(), "{}", texts(&o).1);
    let written = std::path::Path::new("/tmp/meterd-nobody-batch.csv");
    use std::os::unix::fs::MetadataExt;
    assert_eq!(std::fs::metadata(written).unwrap().uid(), NOBODY.0);
    std::fs::remove_file(written).unwrap();

    // 2. Import of a root-only file by an unprivileged user: refused in the client, and
    //    nothing of the file shows anywhere.
    let secret = s.file(
        "secret.csv",
        "meter_id,read_at,value,read_type,codes\nroot:$6$SECRETHASH:19000:0:99999:7:::\n",
    );
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).unwrap();
    let o = s.run_as(NOBODY, &["reads", "import", "secret.csv"]);
    let (out, err) = texts(&o);
    assert_eq!(o.status.code(), Some(1));
    assert_eq!(err, "meterd: error: secret.csv: Permission denied (os error 13)\n");
    assert!(
        !out.contains("SECRET") && !d.log().contains("SECRET"),
        "{out}{}",
        d.log()
    );

    // 3. Token creation by a non-admin.
    let o = s.run_as(NOBODY, &["tokens", "create", "x"]);
    assert!(texts(&o).1.contains("needs the admin role"), "{}", texts(&o).1);

    // 4. An endless file: refused by its size, in the client, once it streamed the limit (the
    //    daemon spooled it to disk, and drops it when the client leaves).
    let started = Instant::now();
    let o = s.run(&["reads", "import", "/dev/zero"]);
    let (_, err) = texts(&o);
    assert_eq!(o.status.code(), Some(1));
    assert!(
        err.contains("/dev/zero: larger than the 512 MiB a command may read"),
        "{err}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));

    // Still serving; nothing changed; the audit trail verifies; the store file is the store.
    assert_eq!(counts(), 3);
    assert!(s.ok(&["audit", "verify"]).contains("audit trail intact"));
    assert!(!d.log().contains("panicked"), "{}", d.log());
    d.stop();
    assert_eq!(
        meterd::store::RedbStore::open_dir(&s.data_dir())
            .unwrap()
            .begin_read()
            .unwrap()
            .count_reads()
            .unwrap(),
        3
    );
}

#[test]
fn device_commands_name_the_component_that_owns_the_port() {
    let s = Scratch::new();
    let port = s.dir.path().join("cradle-1");
    let p1 = s.dir.path().join("p1-port");
    let d = daemon(
        &s,
        &format!(
            "[[cradle]]\nport = \"{}\"\n[[meterbus.p1]]\nport = \"{}\"\n",
            port.display(),
            p1.display()
        ),
    );
    let err = s.fails(&["dock", "--port", port.to_str().unwrap()]);
    assert!(
        err.contains(&format!("the daemon's cradle component owns {}", port.display()))
            && err.contains("(config [[cradle]])"),
        "{err}"
    );
    let err = s.fails(&["listen", "p1", "--port", p1.to_str().unwrap()]);
    assert!(
        err.contains("the daemon's meterbus component owns") && err.contains("[[meterbus.p1]]"),
        "{err}"
    );
    let err = s.fails(&["poll", "probe", "--port", "/dev/ttyUSB9"]);
    assert!(
        err.contains("a meterd daemon is running") && err.contains("[[meterbus.probe]]") && !err.contains("in use"),
        "{err}"
    );
    d.stop();
}

#[test]
fn a_daemon_that_goes_away_mid_command_is_reported_never_replaced() {
    let s = Scratch::new();
    let d = daemon(&s, "");
    // A client that connected keeps to the daemon: once it is gone, the command fails and
    // says so rather than opening the store itself.
    let mut conn = meterd::api::client::connect(&socket(&s)).unwrap().unwrap();
    d.kill();
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let cmd = meterd::api::Command::Reads(meterd::api::commands::ReadsCmd::List {
        json: true,
        meter: None,
    });
    let e = conn
        .run_command(cmd, None, None, None, &mut out, &mut err)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("closed the connection") || e.contains("Broken pipe") || e.contains("reset"),
        "{e}"
    );
    assert!(out.is_empty());
}
