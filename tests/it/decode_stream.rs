//! `meterd decode` as a live filter: it reads its input frame by frame and writes each result
//! as soon as its frame is complete, so it can sit at the end of a receiver's pipe; every
//! capture of `firmware-fixtures/` prints through the command what the library decodes.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::common::Scratch;
use meterd_protocols::decode::{Keys, Protocol, decode_input};

const SCM: &str = "F95306F008951840EA0C101A";

/// A line typed into the pipe comes out while the pipe is still open (the command used to
/// print nothing until its input ended).
#[test]
fn each_frame_comes_out_before_the_input_ends() {
    let s = Scratch::new();
    let mut child = s
        .cmd(&["decode"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap()).is_err() {
                return;
            }
        }
    });
    for n in 1..=2 {
        writeln!(stdin, "{SCM}").unwrap();
        stdin.flush().unwrap();
        // A hang guard, not a speed check: without streaming nothing comes until EOF.
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("frame {n}: nothing printed while the input is open"));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["meter_id"], "54585868", "{line}");
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
    assert!(
        rx.recv_timeout(Duration::from_secs(5)).is_err(),
        "two frames, two lines"
    );
}

/// A line over the limit is refused naming its line, and reading goes on with the next.
#[test]
fn an_overlong_line_is_refused_and_the_next_one_decoded() {
    let s = Scratch::new();
    let input = format!("{SCM}\n{}\n{SCM}\n", "A".repeat(200_000));
    let path = s.file("long.txt", &input);
    let o = s.run(&["decode", path.to_str().unwrap()]);
    let (out, err) = (String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(
        err.contains("frame 2 (line 2)") && err.contains("longer than 65536 bytes"),
        "{err}"
    );
    assert!(err.contains("1 of 3 frames refused"), "{err}");
}

fn captures(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            captures(&path, out);
        } else if path.extension().is_some_and(|e| e == "in") {
            out.push(path);
        }
    }
}

/// Every capture (hex lines, JSON lines, DSMR and IEC 62056-21 telegrams), streamed through the
/// command, prints the frames the library decodes from the whole input, in order, and exits 1
/// exactly when one is refused.
#[test]
fn every_capture_prints_through_the_command_what_the_library_decodes() {
    let s = Scratch::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-fixtures");
    let mut files = Vec::new();
    captures(&root, &mut files);
    files.sort();
    assert!(files.len() > 20, "{files:?}");
    for input in &files {
        let mut args = vec!["decode".to_owned()];
        let mut protocol = None;
        let mut keys = Keys::new();
        if let Ok(text) = std::fs::read_to_string(input.with_extension("args")) {
            for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
                match line.split_once(' ') {
                    Some(("protocol", p)) => {
                        protocol = Some(p.trim().parse::<Protocol>().unwrap());
                        args.extend(["--protocol".to_owned(), p.trim().to_owned()]);
                    }
                    Some(("key", k)) => {
                        let (id, key) = Keys::parse_assignment(k.trim()).unwrap();
                        keys.insert(&id, key);
                        args.extend(["--key".to_owned(), k.trim().to_owned()]);
                    }
                    _ => panic!("{}: {line:?}", input.display()),
                }
            }
        }
        let frames = decode_input(&std::fs::read(input).unwrap(), protocol, &keys);
        let want: Vec<serde_json::Value> = frames
            .iter()
            .filter_map(|f| f.result.as_ref().ok())
            .map(|d| serde_json::to_value(d).unwrap())
            .collect();
        let refused = frames.iter().filter(|f| f.result.is_err()).count();
        args.push(input.to_str().unwrap().to_owned());
        let o = s.run(&args.iter().map(String::as_str).collect::<Vec<_>>());
        let got: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(got, want, "{}", input.display());
        assert_eq!(
            o.status.success(),
            refused == 0 && !frames.is_empty(),
            "{}",
            input.display()
        );
        let err = String::from_utf8_lossy(&o.stderr);
        for f in frames.iter().filter(|f| f.result.is_err()) {
            assert!(
                err.contains(&format!("(line {})", f.line)),
                "{}: {err}",
                input.display()
            );
        }
    }
}
