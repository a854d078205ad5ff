//! The files in `systemd/` against the real tools: `systemd-analyze verify` and
//! `systemd-analyze security` on the unit (exposure must be 2.5 or better),
//! `systemd-sysusers`/`systemd-tmpfiles` applied to a scratch root, the udev rule checked by
//! `udevadm verify` when this udevadm has it (systemd ≥ 254) and parsed for its keys always,
//! and the example configuration parsed by this build's `Config`.
//! Tests needing a tool that is missing say so on stderr and return (install `systemd`).

use std::path::{Path, PathBuf};
use std::process::Command;

use meterd::config::Config;

fn repo(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(p)
}

fn tool(name: &str) -> bool {
    let found = Command::new(name)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        eprintln!("SKIPPED: {name} is not installed (apt-get install systemd); this check did not run");
    }
    found
}

/// The unit with its binary paths pointing at the meterd just built (verify checks they exist).
fn unit_copy(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo("systemd/meterd.service")).unwrap();
    let unit = dir.join("meterd.service");
    std::fs::write(&unit, text.replace("/usr/bin/meterd", env!("CARGO_BIN_EXE_meterd"))).unwrap();
    unit
}

#[test]
fn unit_verifies_and_is_rated_2_5_or_better() {
    if !tool("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_copy(dir.path());
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&unit)
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=true", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no rating in: {text}"));
    let rating: f64 = line
        .split(':')
        .nth(1)
        .and_then(|r| r.split_whitespace().next())
        .and_then(|r| r.parse().ok())
        .unwrap();
    eprintln!("systemd-analyze security: {}", line.trim());
    assert!(rating <= 2.5, "exposure {rating} is worse than 2.5:\n{text}");
    // The settings the brief names are really there, not only a good number.
    let unit_text = std::fs::read_to_string(repo("systemd/meterd.service")).unwrap();
    for key in [
        "Type=notify",
        "WatchdogSec=",
        "ExecReload=",
        "StateDirectory=meterd",
        "ConfigurationDirectory=meterd",
        "SupplementaryGroups=dialout",
        "ProtectSystem=strict",
        "PrivateTmp=yes",
        "NoNewPrivileges=yes",
        "ProtectHome=yes",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "DevicePolicy=closed",
        "DeviceAllow=char-ttyUSB rw",
        "DeviceAllow=char-ttyACM rw",
        "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service",
        "MemoryDenyWriteExecute=yes",
        "UMask=0077",
    ] {
        assert!(unit_text.contains(key), "unit lacks {key:?}");
    }
}

#[test]
fn sysusers_and_tmpfiles_apply_to_a_scratch_root() {
    if !tool("systemd-sysusers") || !tool("systemd-tmpfiles") {
        return;
    }
    let root = tempfile::tempdir().unwrap();
    let r = root.path();
    for (from, to) in [
        ("systemd/meterd.sysusers", "usr/lib/sysusers.d/meterd.conf"),
        ("systemd/meterd.tmpfiles", "usr/lib/tmpfiles.d/meterd.conf"),
    ] {
        std::fs::create_dir_all(r.join(to).parent().unwrap()).unwrap();
        std::fs::copy(repo(from), r.join(to)).unwrap();
    }
    std::fs::create_dir_all(r.join("etc")).unwrap();
    let out = Command::new("systemd-sysusers")
        .arg(format!("--root={}", r.display()))
        .arg("meterd.conf")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-sysusers: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passwd = std::fs::read_to_string(r.join("etc/passwd")).unwrap();
    let group = std::fs::read_to_string(r.join("etc/group")).unwrap();
    let user = passwd
        .lines()
        .find(|l| l.starts_with("meterd:"))
        .unwrap_or_else(|| panic!("no meterd user: {passwd}"));
    assert!(user.ends_with(":/var/lib/meterd:/usr/sbin/nologin"), "{user}");
    assert!(
        group
            .lines()
            .any(|l| l.starts_with("dialout:") && l.split(':').nth(3).unwrap().split(',').any(|m| m == "meterd")),
        "{group}"
    );

    let out = Command::new("systemd-tmpfiles")
        .arg(format!("--root={}", r.display()))
        .args(["--create", "meterd.conf"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "systemd-tmpfiles: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let uid: u32 = user.split(':').nth(2).unwrap().parse().unwrap();
    for d in ["run/meterd", "var/lib/meterd"] {
        let m = std::fs::metadata(r.join(d)).unwrap();
        assert!(m.is_dir(), "{d}");
        assert_eq!((m.uid(), m.permissions().mode() & 0o777), (uid, 0o750), "{d}");
    }
    // The nightly backups' directory: root's alone.
    let m = std::fs::metadata(r.join("var/backups/meterd")).unwrap();
    assert_eq!((m.uid(), m.permissions().mode() & 0o777), (0, 0o700));
}

/// The nightly backup: service and timer verify, and the package installs both.
#[test]
fn backup_service_and_timer_verify() {
    if !tool("systemd-analyze") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for name in ["meterd-backup.service", "meterd-backup.timer"] {
        let text = std::fs::read_to_string(repo(&format!("systemd/{name}"))).unwrap();
        std::fs::write(
            dir.path().join(name),
            text.replace("/usr/bin/meterd", env!("CARGO_BIN_EXE_meterd")),
        )
        .unwrap();
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(dir.path().join("meterd-backup.service"))
        .arg(dir.path().join("meterd-backup.timer"))
        .output()
        .unwrap();
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "systemd-analyze verify: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let service = std::fs::read_to_string(repo("systemd/meterd-backup.service")).unwrap();
    assert!(service.contains("store backup") && service.contains("-mtime +${KEEP_DAYS} -delete"));
    let cargo = std::fs::read_to_string(repo("Cargo.toml")).unwrap();
    for name in ["meterd-backup.service", "meterd-backup.timer"] {
        assert!(
            cargo.contains(&format!("[\"systemd/{name}\", \"lib/systemd/system/{name}\", \"644\"]")),
            "{name} is not in [package.metadata.deb] assets"
        );
    }
}

#[test]
fn udev_rule_names_cradles_by_serial() {
    let path = repo("systemd/99-meterd-cradles.rules");
    let text = std::fs::read_to_string(&path).unwrap();
    if Command::new("udevadm")
        .arg("verify")
        .arg("--help")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let out = Command::new("udevadm").arg("verify").arg(&path).output().unwrap();
        assert!(
            out.status.success(),
            "udevadm verify: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        eprintln!("SKIPPED part: this udevadm has no `verify` (systemd < 254); the rule is parsed here instead");
    }
    // Each rule line is `KEY op "value"` items separated by commas; every key must be one udev
    // knows, every value quoted, and the labels jumped to must exist.
    let known = [
        "ACTION",
        "SUBSYSTEM",
        "SUBSYSTEMS",
        "KERNEL",
        "ENV",
        "ATTRS",
        "SYMLINK",
        "GROUP",
        "MODE",
        "GOTO",
        "LABEL",
    ];
    let mut labels = Vec::new();
    let mut gotos = Vec::new();
    let mut symlinks = Vec::new();
    for (n, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    {
        for item in line.split(", ") {
            let op = ["==", "!=", "+=", "="]
                .into_iter()
                .find(|op| item.contains(op))
                .unwrap_or_else(|| panic!("line {}: no operator in {item:?}", n + 1));
            let (key, value) = item.split_once(op).unwrap();
            let base = key.split('{').next().unwrap().trim();
            assert!(known.contains(&base), "line {}: unknown key {key:?}", n + 1);
            assert!(
                value.starts_with('"') && value.ends_with('"') && value.len() >= 2,
                "line {}: unquoted value {value:?}",
                n + 1
            );
            let value = &value[1..value.len() - 1];
            match base {
                "LABEL" => labels.push(value.to_owned()),
                "GOTO" => gotos.push(value.to_owned()),
                "SYMLINK" => symlinks.push(value.to_owned()),
                "GROUP" => assert_eq!(value, "dialout"),
                "MODE" => assert_eq!(value, "0660"),
                _ => {}
            }
        }
    }
    for g in &gotos {
        assert!(labels.contains(g), "GOTO {g} has no LABEL");
    }
    assert_eq!(
        symlinks,
        ["meterd/cradle-$env{ID_SERIAL_SHORT}", "meterd/cradle-$attr{serial}"]
    );
    assert!(text.contains(r#"ENV{ID_SERIAL_SHORT}=="?*""#) && text.contains(r#"ATTRS{serial}=="?*""#));
}

/// The example configuration parses as it is (the sections this build has), and each commented
/// `[optional]` block, once uncommented, either parses or is refused only because this build
/// does not have that section yet; when the component lands, its block is checked for real.
#[test]
fn example_configuration_parses() {
    let text = std::fs::read_to_string(repo("systemd/meterd.toml")).unwrap();
    let config = Config::parse(&text, "systemd/meterd.toml").unwrap();
    assert_eq!(config.data_dir.as_deref(), Some(Path::new("/var/lib/meterd")));
    assert_eq!(
        config.daemon.control_socket.as_deref(),
        Some(Path::new("/run/meterd/control.sock"))
    );
    // The example lists the defaults: apart from the two paths above it is the default config.
    let defaults = Config {
        data_dir: config.data_dir.clone(),
        daemon: meterd::config::DaemonConfig {
            control_socket: config.daemon.control_socket.clone(),
            ..Default::default()
        },
        ..Default::default()
    };
    assert_eq!(config, defaults);

    let blocks: Vec<&str> = text.split("# -----").filter(|b| b.contains("[optional]")).collect();
    assert!(blocks.len() >= 5, "cradle, mqtt, meter bus and http blocks expected");
    let mut pending = Vec::new();
    let mut checked = 0;
    for block in blocks {
        let uncommented: String = block
            .lines()
            .filter_map(|l| l.strip_prefix('#'))
            .filter(|l| !l.starts_with(' ') && !l.starts_with('-') && !l.is_empty())
            .map(|l| format!("{l}\n"))
            .collect();
        if uncommented.is_empty() {
            continue; // the file's header, which mentions [pending]
        }
        let section = uncommented
            .lines()
            .next()
            .unwrap()
            .trim_matches(|c| c == '[' || c == ']')
            .split('.')
            .next()
            .unwrap()
            .to_owned();
        match Config::parse(&format!("{text}\n{uncommented}"), "example") {
            Ok(_) => checked += 1,
            Err(e) if e.to_string().contains(&format!("unknown field `{section}`")) => pending.push(section),
            Err(e) => panic!("the [{section}] example does not parse: {e}\n{uncommented}"),
        }
    }
    assert!(checked >= 4, "{checked} checked, pending {pending:?}");
    assert!(
        pending.is_empty(),
        "example sections this build does not have: {pending:?}"
    );
}
