//! `meterd check-config` on the real binary: the effective configuration with defaults and no
//! secrets, unknown keys refused with their line. (Referenced files and secret permissions are
//! checked by `config::tests::referenced_files_are_checked`: no section of this build names a
//! file yet.)

use crate::common::Scratch;

#[test]
fn check_config_prints_the_effective_configuration() {
    let s = Scratch::new();
    let file = s.file(
        "site.toml",
        "data_dir = \"/srv/meterd\"\n[vee.gas]\nhigh_factor = 2.5\napproval_threshold = 50\n",
    );
    let out = s.run(&["--config", file.to_str().unwrap(), "check-config"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8(out.stdout).unwrap();
    // Defaults filled in, the file's values kept, and the output is itself a valid config.
    for needle in [
        "[vee.gas]",
        "high_factor = 2.5",
        "approval_threshold = 50",
        "[vee.water]",
        "[log]",
        "level = \"info\"",
        "stop_deadline_secs = 25",
    ] {
        assert!(stdout.contains(needle), "{needle} missing in:\n{stdout}");
    }
    let body: String = stdout
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| format!("{l}\n"))
        .collect();
    meterd::config::Config::parse(&body, "printed").unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("OK"));
}

#[test]
fn check_config_names_the_line_of_an_unknown_key() {
    let s = Scratch::new();
    let file = s.file(
        "site.toml",
        "[vee.water]\nhigh_factor = 2\n\n[daemon]\ncontrol_sockett = \"/run/x\"\n",
    );
    let err = s.fails(&["--config", file.to_str().unwrap(), "check-config"]);
    assert!(
        err.contains("site.toml") && err.contains("line 5, column 1") && err.contains("control_sockett"),
        "{err}"
    );
}
