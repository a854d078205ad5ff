//! `meterd decode` as a live filter: it reads its input frame by frame (lines, text telegrams,
//! binary frames) and writes each result as soon as its frame is complete, so it can sit at the
//! end of a receiver's pipe, in memory that does not grow with the input; every capture of
//! `firmware-fixtures/` prints through the command what the library decodes, on one thread or
//! several.

use std::io::{BufRead, BufReader, Read as _, Write};
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
    let mut f = Filter::start(&s, &[]);
    for n in 1..=2 {
        f.send(format!("{SCM}\n").as_bytes());
        // Without streaming nothing comes until EOF.
        let v = f.next(&format!("frame {n}"));
        assert_eq!(v["meter_id"], "54585868", "{v}");
    }
    let (ok, err, rest) = f.finish();
    assert!(ok, "{err}");
    assert!(rest.is_empty(), "two frames, two lines: {rest:?}");
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
        err.contains("frame 2 (line 2, byte 25)") && err.contains("longer than 65536 bytes"),
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
                err.contains(&format!("(line {}, byte ", f.line)),
                "{}: {err}",
                input.display()
            );
        }
    }
}

/// A spawned `meterd decode` with its output read line by line on a thread.
struct Filter {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl Filter {
    fn start(s: &Scratch, args: &[&str]) -> Filter {
        let mut all = vec!["decode"];
        all.extend_from_slice(args);
        let mut child = s
            .cmd(&all)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                if tx.send(line.unwrap()).is_err() {
                    return;
                }
            }
        });
        Filter { child, stdin, lines }
    }

    fn send(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().unwrap();
        stdin.write_all(bytes).unwrap();
        stdin.flush().unwrap();
    }

    /// The next output line; a hang guard, not a speed check.
    fn next(&self, what: &str) -> serde_json::Value {
        let line = self
            .lines
            .recv_timeout(Duration::from_secs(30))
            .unwrap_or_else(|_| panic!("{what}: nothing printed while the input is open"));
        serde_json::from_str(&line).unwrap()
    }

    /// Peak resident memory so far, in KiB (VmHWM).
    fn peak_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Closes the input and waits; returns success, stderr and the output lines not yet read.
    fn finish(mut self) -> (bool, String, Vec<String>) {
        drop(self.stdin.take());
        let mut err = String::new();
        self.child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
        let ok = self.child.wait().unwrap().success();
        // The reading thread ends at the end of the output.
        (ok, err, self.lines.iter().collect())
    }
}

/// Text telegrams are framed live too: a DSMR telegram is decoded when its CRC line arrives and
/// an IEC 62056-21 readout when its BCC does, not when the next one starts or the input ends.
#[test]
fn each_text_telegram_comes_out_when_its_end_mark_arrives() {
    let s = Scratch::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-fixtures");
    for (capture, protocol) in [
        ("dsmr/sagemcom-t210-d/v5.in", "dsmr"),
        ("iec62056-21/landis-gyr-e350/readout.in", "iec62056-21"),
    ] {
        let telegram = std::fs::read(root.join(capture)).unwrap();
        let mut f = Filter::start(&s, &[]);
        for n in 1..=2 {
            f.send(&telegram);
            let v = f.next(&format!("{capture}, telegram {n}"));
            assert_eq!(v["protocol"], protocol, "{v}");
        }
        let (ok, err, _) = f.finish();
        assert!(ok, "{err}");
    }
}

/// Raw binary frames are cut by their length fields; garbage between them is skipped, counted
/// and reported with its byte offset, and the frames around it are decoded.
#[test]
fn binary_frames_are_cut_by_length_and_garbage_between_them_reported() {
    let s = Scratch::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-fixtures");
    let hex = |p: &str| -> Vec<u8> {
        let text = std::fs::read_to_string(root.join(p)).unwrap();
        let line = text
            .lines()
            .find(|l| !l.trim().is_empty() && !l.starts_with('#'))
            .unwrap();
        meterd_protocols::hexline::parse(line).unwrap()
    };
    let mbus = hex("mbus/libmbus/frame2.in");
    let wmbus = hex("wmbus/sensus-iperl/r1-t1.in");
    let mut input = mbus.clone();
    input.extend_from_slice(&[0xFF, 0x00, 0xFE]);
    let garbage_at = input.len() - 3;
    input.extend_from_slice(&wmbus);
    input.push(0xE5);
    let path = s.file("capture.bin", "");
    std::fs::write(&path, &input).unwrap();
    let want: Vec<serde_json::Value> = [&mbus, &wmbus]
        .iter()
        .map(|f| {
            let frames = decode_input(f, None, &Keys::new());
            serde_json::to_value(frames[0].result.as_ref().unwrap()).unwrap()
        })
        .collect();
    for jobs in ["1", "2"] {
        let o = s.run(&["decode", "--jobs", jobs, path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(o.status.success(), "{err}");
        let got: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(got, want, "--jobs {jobs}");
        assert!(
            err.contains(&format!("skipped 3 bytes at line 1, byte {garbage_at}")),
            "{err}"
        );
        assert!(err.contains("1 M-Bus control frames"), "{err}");
    }
}

/// On several threads the output and the refusals keep the input's order and say the same.
#[test]
fn parallel_decoding_keeps_the_input_order() {
    let s = Scratch::new();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("firmware-fixtures");
    let mut lines = Vec::new();
    for p in [
        "ert/scm/s1.in",
        "ert/idm/i1.in",
        "ert/r900/r1.in",
        "ert/scm/n1_bad_bch.in",
        "wmbus/sensus-iperl/r1-t1.in",
    ] {
        let text = std::fs::read_to_string(root.join(p)).unwrap();
        lines.extend(text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned));
    }
    // Enough to span many batches, with refusals spread through them.
    let input: String = (0..40_000).map(|i| format!("{}\n", lines[i % lines.len()])).collect();
    let path = s.file("mixed.txt", &input);
    let one = s.run(&["decode", "--jobs", "1", path.to_str().unwrap()]);
    let two = s.run(&["decode", "--jobs", "3", path.to_str().unwrap()]);
    assert_eq!(one.status.code(), Some(1));
    assert_eq!(two.status.code(), Some(1));
    assert!(one.stdout.len() > 1_000_000, "{}", one.stdout.len());
    assert!(one.stdout == two.stdout, "outputs differ");
    assert_eq!(
        String::from_utf8_lossy(&one.stderr),
        String::from_utf8_lossy(&two.stderr)
    );
}

/// Memory stays flat: 1,000,000 lines through the pipe take about what 10 take (VmHWM read
/// while the command still runs; a generous bound, not a speed check).
#[test]
fn memory_stays_flat_over_a_million_lines() {
    let s = Scratch::new();
    let peak = |lines: usize| -> u64 {
        let mut f = Filter::start(&s, &[]);
        let chunk = format!("{SCM}\n").repeat(10_000.min(lines));
        let mut sent = 0;
        let mut seen = 0;
        while sent < lines {
            f.send(chunk.as_bytes());
            sent += 10_000.min(lines);
            // Keep the pipe's backlog small: read what came out.
            while seen + 10_000 < sent {
                f.next("output");
                seen += 1;
            }
        }
        while seen < lines {
            f.next("output");
            seen += 1;
        }
        let kib = f.peak_kib();
        let (ok, err, _) = f.finish();
        assert!(ok, "{err}");
        kib
    };
    let small = peak(10);
    let large = peak(1_000_000);
    assert!(
        large < small + 16 * 1024,
        "1,000,000 lines peaked at {large} KiB, 10 lines at {small} KiB"
    );
}
