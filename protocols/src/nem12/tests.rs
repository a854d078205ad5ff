use jiff::civil::date;
use proptest::prelude::*;

use super::*;

/// Feed a whole text through a reader, collecting the events.
fn read_all(text: &str) -> Result<Vec<Nem12Event>, Nem12Error> {
    let mut r = Nem12Reader::new();
    let mut out = Vec::new();
    for (i, line) in text.split_inclusive('\n').enumerate() {
        out.extend(r.push_line(i as u64 + 1, line)?);
    }
    r.finish()?;
    Ok(out)
}

fn days(events: &[Nem12Event]) -> Vec<&Day> {
    events
        .iter()
        .filter_map(|e| match e {
            Nem12Event::Day(d) => Some(d),
            _ => None,
        })
        .collect()
}

/// A 300 record of `n` values all `v`, with the given quality-method.
fn day300(date: &str, n: usize, v: &str, qm: &str) -> String {
    format!(
        "300,{date},{},{qm},,,20240102030405,20240102040506",
        vec![v; n].join(",")
    )
}

fn file(body: &[String]) -> String {
    let mut lines = vec![
        "100,NEM12,202401020304,MDPA,RETAILB".to_string(),
        "200,NMI0000001,E1B1,1,E1,N1,MTR1,KWH,30,20240301".to_string(),
    ];
    lines.extend(body.iter().cloned());
    lines.push("900".into());
    lines.join("\r\n") + "\r\n"
}

fn err_of(text: &str) -> Nem12Error {
    read_all(text).expect_err("should be refused")
}

#[test]
fn reads_a_file_with_header_channel_days_and_end() {
    let text = file(&[
        day300("20240101", 48, "1.25", "A"),
        format!("300,20240102,{},V,,,20240103000000,", vec!["0.5"; 48].join(",")),
        "400,1,20,A,,".into(),
        "400,21,48,S14,41,Faulty Equipment".into(),
        "500,O,S01234567,20240103000000,1234.5".into(),
    ]);
    let events = read_all(&text).unwrap();
    let Nem12Event::Header(h) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(h.created, date(2024, 1, 2).at(3, 4, 0, 0));
    assert_eq!(
        (h.from_participant.as_str(), h.to_participant.as_str()),
        ("MDPA", "RETAILB")
    );
    let Nem12Event::Channel(c) = &events[1] else { panic!() };
    assert_eq!(c.nmi, "NMI0000001");
    assert_eq!(c.nmi_suffix, "E1");
    assert_eq!(c.unit, "KWH");
    assert_eq!(c.interval_minutes, 30);
    assert_eq!(c.next_scheduled_read, Some(date(2024, 3, 1)));
    let d = days(&events);
    assert_eq!(d.len(), 2);
    assert_eq!(d[0].values, vec![1_250_000; 48]);
    assert_eq!(d[0].quality.to_string(), "A");
    assert_eq!(d[0].updated, Some(date(2024, 1, 2).at(3, 4, 5, 0)));
    assert_eq!(d[0].line, 3);
    assert_eq!(d[1].events.len(), 2);
    assert_eq!(d[1].events[1].reason_code, Some(41));
    assert_eq!(d[1].events[1].reason_text, "Faulty Equipment");
    assert_eq!(d[1].msats_loaded, None);
    let q = d[1].interval_qualities();
    assert_eq!(q[19].quality.to_string(), "A");
    assert_eq!(q[20].quality.to_string(), "S14");
    assert!(
        matches!(events[3], Nem12Event::Day(_)),
        "the V day comes before the 500 that closes it"
    );
    assert!(matches!(&events[4], Nem12Event::B2b(b) if b.index_read == "1234.5"));
    assert_eq!(events.last(), Some(&Nem12Event::End));
}

#[test]
fn a_day_is_given_only_when_its_400_records_are_complete() {
    let mut r = Nem12Reader::new();
    assert_eq!(r.push_line(1, "100,NEM12,202401020304,A,B").unwrap().len(), 1);
    assert_eq!(r.push_line(2, "200,N1,E1,1,E1,,,KWH,60,").unwrap().len(), 1);
    let v = format!("300,20240101,{},V,,,,", vec!["1"; 24].join(","));
    assert!(r.push_line(3, &v).unwrap().is_empty());
    assert!(r.push_line(4, "400,1,12,A,,").unwrap().is_empty());
    assert!(r.push_line(5, "400,13,24,E52,,").unwrap().is_empty());
    let out = r.push_line(6, "900").unwrap();
    assert!(matches!(&out[..], [Nem12Event::Day(d), Nem12Event::End] if d.events.len() == 2));
    r.finish().unwrap();
}

#[test]
fn lf_endings_and_blank_lines_are_taken() {
    let text = file(&[day300("20240101", 48, "0", "A")]).replace("\r\n", "\n\n");
    assert_eq!(days(&read_all(&text).unwrap()).len(), 1);
}

#[test]
fn dst_days_of_23_and_25_hours_are_taken_and_counted() {
    let text = file(&[day300("20240101", 46, "1", "A"), day300("20240102", 50, "1", "A")]);
    let events = read_all(&text).unwrap();
    let counts: Vec<usize> = days(&events).iter().map(|d| d.values.len()).collect();
    assert_eq!(counts, vec![46, 50]);
    let text = file(&[])
        .replace(",30,", ",15,")
        .replace("900", &(day300("20240101", 92, "1", "A") + "\r\n900"));
    assert_eq!(days(&read_all(&text).unwrap())[0].values.len(), 92);
}

#[test]
fn refuses_a_file_without_header_or_end() {
    let e = err_of("200,N1,E1,1,E1,,,KWH,30,\r\n900\r\n");
    assert_eq!((e.line, e.field), (1, "record indicator"));
    assert!(e.detail.contains("100 header"), "{e}");
    let text = file(&[]).replace("900\r\n", "");
    let e = err_of(&text);
    assert_eq!((e.line, e.field), (2, "file"));
    assert!(e.detail.contains("no 900"), "{e}");
    let mut r = Nem12Reader::new();
    assert_eq!(r.finish().unwrap_err().detail, "no 100 header");
    let e = err_of("100,NEM13,202401020304,A,B\r\n900\r\n");
    assert_eq!(e.field, "version header");
    let e = err_of(&(file(&[]) + "200,N1,E1,1,E1,,,KWH,30,\r\n"));
    assert!(e.detail.contains("after the 900"), "{e}");
    let e = err_of(&file(&["100,NEM12,202401020304,A,B".into()]));
    assert!(e.detail.contains("second 100"), "{e}");
    let e = err_of(&file(&["250,x".into()]));
    assert_eq!((e.line, e.field), (3, "record indicator"));
}

#[test]
fn refuses_a_day_before_any_channel() {
    let text = format!(
        "100,NEM12,202401020304,A,B\n{}\n900\n",
        day300("20240101", 48, "1", "A")
    );
    let e = err_of(&text);
    assert_eq!((e.line, e.field), (2, "record indicator"));
    assert!(e.detail.contains("before any 200"), "{e}");
}

#[test]
fn refuses_a_wrong_value_count_with_the_counts_it_takes() {
    let e = err_of(&file(&[day300("20240101", 47, "1", "A")]));
    assert_eq!((e.line, e.field), (3, "interval values"));
    assert!(
        e.detail.contains("47 values") && e.detail.contains("46, 48 or 50"),
        "{e}"
    );
    let e = err_of(&file(&["300,20240101".into()]));
    assert_eq!(e.field, "interval values");
}

#[test]
fn refuses_bad_values_naming_the_interval() {
    let mut vals = vec!["1"; 48];
    vals[4] = "x1";
    let e = err_of(&file(&[format!("300,20240101,{},A,,,,", vals.join(","))]));
    assert_eq!((e.line, e.field), (3, "interval value"));
    assert!(e.detail.contains("interval 5"), "{e}");
    vals[4] = "0.0000001";
    let e = err_of(&file(&[format!("300,20240101,{},A,,,,", vals.join(","))]));
    assert!(e.detail.contains("more than 6 decimal places"), "{e}");
    vals[4] = "99999999999999999";
    let e = err_of(&file(&[format!("300,20240101,{},A,,,,", vals.join(","))]));
    assert!(e.detail.contains("too large"), "{e}");
}

#[test]
fn refuses_unknown_quality_flags_and_bad_fields() {
    let e = err_of(&file(&[day300("20240101", 48, "1", "X")]));
    assert_eq!((e.line, e.field), (3, "quality-method"));
    let e = err_of(&file(&[day300("20241301", 48, "1", "A")]));
    assert_eq!(e.field, "interval date");
    let e = err_of(&file(&[
        day300("20240101", 48, "1", "A").replace(",,,2024", ",1000,,2024")
    ]));
    assert_eq!(e.field, "reason code");
    let e = err_of(&file(&[
        day300("20240101", 48, "1", "A").replace("20240102030405", "2024")
    ]));
    assert_eq!(e.field, "update date-time");
    let e = err_of(&file(&[]).replace(",30,", ",10,"));
    assert_eq!((e.line, e.field), (2, "interval length"));
    let e = err_of(&file(&[]).replace("NMI0000001", "NMI00000012"));
    assert_eq!(e.field, "NMI");
    let e = err_of(&file(&[]).replace(",KWH,", ",,"));
    assert_eq!(e.field, "unit of measure");
    let e = err_of(&file(&["200,N1,E1".into()]));
    assert_eq!((e.line, e.field), (3, "record"));
    assert!(e.detail.contains("9 or 10 fields"), "{e}");
    let e = err_of(&file(&["500,O,S1,20240101".into()]));
    assert!(e.detail.contains("5 fields"), "{e}");
    let e = err_of(&file(&[]).replace("900", "900,x"));
    assert_eq!(e.field, "record");
}

#[test]
fn refuses_400_records_that_do_not_tile_the_day() {
    let v = || format!("300,20240101,{},V,,,,", vec!["1"; 48].join(","));
    let cases: [(&[&str], &str, &str); 7] = [
        (&["400,1,20,A,,", "400,20,48,E52,,"], "start interval", "overlaps"),
        (
            &["400,1,20,A,,", "400,22,48,E52,,"],
            "start interval",
            "without an event",
        ),
        (&["400,1,49,A,,"], "end interval", "beyond the day's 48"),
        (&["400,1,0,A,,"], "end interval", "before the start"),
        (&["400,0,5,A,,"], "start interval", "count from 1"),
        (&["400,1,20,A,,"], "400 records", "1 to 20 of the day's 48"),
        (&["400,1,48,V,,"], "quality-method", "cannot be V"),
    ];
    for (events, field, detail) in cases {
        let mut body = vec![v()];
        body.extend(events.iter().map(|s| s.to_string()));
        let e = err_of(&file(&body));
        assert_eq!(e.field, field, "{events:?}: {e}");
        assert!(e.detail.contains(detail), "{events:?}: {e}");
    }
    let e = err_of(&file(&[v()]));
    assert_eq!((e.line, e.field), (3, "quality-method"));
    assert!(e.detail.contains("without 400"), "{e}");
    let e = err_of(&file(&[day300("20240101", 48, "1", "A"), "400,1,48,A,,".into()]));
    assert_eq!((e.line, e.field), (4, "record indicator"));
    assert!(e.detail.contains("after a A day"), "{e}");
    let e = err_of(&file(&["400,1,48,A,,".into()]));
    assert!(e.detail.contains("without a 300"), "{e}");
}

#[test]
fn refuses_long_lines_and_too_many_fields() {
    let mut r = Nem12Reader::new();
    let e = r.push_line(7, &"1".repeat(MAX_LINE + 1)).unwrap_err();
    assert_eq!((e.line, e.field), (7, "record"));
    let e = r.push_line(8, &",".repeat(MAX_FIELDS)).unwrap_err();
    assert!(e.detail.contains("more than"), "{e}");
}

fn header() -> Header {
    Header {
        created: date(2024, 1, 2).at(3, 4, 0, 0),
        from_participant: "MDPA".into(),
        to_participant: "RETAILB".into(),
    }
}

fn channel(minutes: u16) -> Channel {
    Channel {
        nmi: "NMI0000001".into(),
        nmi_configuration: "E1B1".into(),
        register_id: "1".into(),
        nmi_suffix: "E1".into(),
        mdm_data_stream_id: "N1".into(),
        meter_serial: "MTR1".into(),
        unit: "KWH".into(),
        interval_minutes: minutes,
        next_scheduled_read: None,
    }
}

fn qm(text: &str) -> IntervalQuality {
    IntervalQuality::new(QualityMethod::parse(text).unwrap())
}

#[test]
fn writes_lines_the_way_nem12_has_them() {
    let d = Day::from_intervals(date(2024, 1, 1), vec![1_500_000; 24], &vec![qm("A"); 24]).unwrap();
    let lines = day_lines(60, &d).unwrap();
    assert_eq!(lines.len(), 1);
    assert!(lines[0].starts_with("300,20240101,1.5,1.5,"), "{}", lines[0]);
    assert!(lines[0].ends_with(",1.5,A,,,,"), "{}", lines[0]);
    assert_eq!(
        channel_line(&channel(15)).unwrap(),
        "200,NMI0000001,E1B1,1,E1,N1,MTR1,KWH,15,"
    );
    assert_eq!(header_line(&header()).unwrap(), "100,NEM12,202401020304,MDPA,RETAILB");
    let text = write_file(&header(), &[(channel(60), vec![d])]).unwrap();
    assert!(text.ends_with("\r\n900\r\n"), "{text}");
    assert_eq!(text.matches("\r\n").count(), 4);
}

#[test]
fn a_mixed_day_is_written_as_v_with_merged_runs_and_reads_back() {
    let mut qs = vec![qm("A"); 96];
    for q in &mut qs[10..14] {
        *q = qm("E52");
    }
    for q in &mut qs[14..20] {
        *q = IntervalQuality {
            quality: QualityMethod::parse("S14").unwrap(),
            reason_code: Some(41),
            reason_text: "Faulty Equipment".into(),
        };
    }
    qs[95] = qm("N");
    let values: Vec<i64> = (0..96).map(|i| i * 12_345).collect();
    let d = Day::from_intervals(date(2024, 1, 1), values.clone(), &qs).unwrap();
    assert_eq!(d.quality.to_string(), "V");
    let lines = day_lines(15, &d).unwrap();
    assert_eq!(
        &lines[1..],
        [
            "400,1,10,A,,",
            "400,11,14,E52,,",
            "400,15,20,S14,41,Faulty Equipment",
            "400,21,95,A,,",
            "400,96,96,N,,"
        ]
    );
    assert!(lines[0].starts_with("300,20240101,0,0.012345,0.02469,"), "{}", lines[0]);
    let text = write_file(&header(), &[(channel(15), vec![d.clone()])]).unwrap();
    let events = read_all(&text).unwrap();
    let back = days(&events);
    assert_eq!(back[0].values, values);
    assert_eq!(back[0].interval_qualities(), qs);
    assert_eq!(
        Day {
            line: 0,
            ..back[0].clone()
        },
        d
    );
}

#[test]
fn the_writer_refuses_what_the_reader_would() {
    let d = Day::from_intervals(date(2024, 1, 1), vec![0; 47], &vec![qm("A"); 47]).unwrap();
    assert!(day_lines(30, &d).unwrap_err().to_string().contains("47 values"));
    let mut d = Day::from_intervals(date(2024, 1, 1), vec![0; 48], &vec![qm("A"); 48]).unwrap();
    d.reason_text = "a, b".into();
    assert!(day_lines(30, &d).unwrap_err().to_string().contains("comma"));
    d.reason_text.clear();
    d.quality = QualityMethod::new(Quality::Variable, None);
    assert!(
        day_lines(30, &d)
            .unwrap_err()
            .to_string()
            .contains("cover intervals 1 to 0")
    );
    let mut c = channel(10);
    assert!(channel_line(&c).is_err());
    c.interval_minutes = 30;
    c.nmi.clear();
    assert!(channel_line(&c).unwrap_err().to_string().contains("NMI"));
    assert!(Day::from_intervals(date(2024, 1, 1), vec![0; 2], &[qm("A")]).is_err());
    assert!(Day::from_intervals(date(2024, 1, 1), vec![0; 1], &[qm("V")]).is_err());
}

fn arb_quality() -> impl Strategy<Value = IntervalQuality> {
    prop_oneof![Just("A"), Just("E52"), Just("S14"), Just("F17"), Just("N"), Just("S53")].prop_map(qm)
}

proptest! {
    #[test]
    fn random_days_round_trip(
        minutes in prop::sample::select(INTERVAL_MINUTES.to_vec()),
        hours in 23u16..=25,
        seed in prop::collection::vec((any::<i64>(), arb_quality()), 300),
        ndays in 1usize..4,
    ) {
        let n = values_per_day(minutes, hours);
        let mut written = Vec::new();
        for k in 0..ndays {
            let slice = &seed[..n];
            let values: Vec<i64> = slice.iter().map(|(v, _)| v.rotate_left(k as u32) / 7).collect();
            let qs: Vec<IntervalQuality> = slice.iter().map(|(_, q)| q.clone()).collect();
            let mut d = Day::from_intervals(date(2024, 1, 1 + k as i8), values, &qs).unwrap();
            d.updated = Some(date(2024, 2, 1).at(12, 0, k as i8, 0));
            written.push((d, qs));
        }
        let days_in: Vec<Day> = written.iter().map(|(d, _)| d.clone()).collect();
        let text = write_file(&header(), &[(channel(minutes), days_in)]).unwrap();
        prop_assert!(text.lines().all(|l| l.len() <= MAX_LINE));
        let events = read_all(&text).unwrap();
        let back = days(&events);
        prop_assert_eq!(back.len(), ndays);
        for (b, (d, qs)) in back.iter().zip(&written) {
            prop_assert_eq!(&b.values, &d.values);
            prop_assert_eq!(&b.interval_qualities(), qs);
            prop_assert_eq!(b.updated, d.updated);
        }
    }

    #[test]
    fn random_lines_never_panic(lines in prop::collection::vec("[0-9A-Z,.\\-\\r\\n ]{0,80}", 0..12)) {
        let mut r = Nem12Reader::new();
        let _ = r.push_line(1, "100,NEM12,202401020304,A,B");
        let _ = r.push_line(2, "200,N1,E1,1,E1,,,KWH,60,");
        for (i, l) in lines.iter().enumerate() {
            if r.push_line(i as u64 + 3, l).is_err() {
                break;
            }
        }
        let _ = r.finish();
    }

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let text = String::from_utf8_lossy(&bytes);
        let mut r = Nem12Reader::new();
        for (i, l) in text.split('\n').enumerate() {
            if r.push_line(i as u64 + 1, l).is_err() {
                break;
            }
        }
        let _ = r.finish();
    }

    #[test]
    fn mutated_valid_lines_never_panic(cut in 0usize..400, junk in "[0-9A-Z,.]{0,6}") {
        let text = file(&[
            format!("300,20240102,{},V,,,20240103000000,", vec!["0.5"; 48].join(",")),
            "400,1,20,A,,".into(),
            "400,21,48,S14,41,Faulty Equipment".into(),
        ]);
        let cut = cut.min(text.len());
        let cut = (0..=cut).rev().find(|&c| text.is_char_boundary(c)).unwrap_or(0);
        let mangled = format!("{}{junk}{}", &text[..cut], &text[cut..]);
        let _ = read_all(&mangled);
    }
}
