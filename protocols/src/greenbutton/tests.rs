use std::collections::{HashMap, HashSet};

use super::*;

const DAY: i64 = 86_400;
/// 2024-03-11T05:00:00Z, midnight in US Eastern (UTC−5) standard time.
const START: i64 = 1_710_133_200;

fn day_block(day: i64, hours: u32, f: impl Fn(i64) -> IntervalValue) -> Block {
    Block {
        start: START + day * DAY,
        duration_secs: hours * 3600,
        readings: (0..i64::from(hours) * 4).map(f).collect(),
    }
}

fn feed() -> Feed {
    let kwh = |day: i64| {
        move |i: i64| IntervalValue {
            start: START + day * DAY + i * 900,
            duration_secs: 900,
            value: if i == 7 {
                None
            } else {
                Some((i + 1) * 1_234_000 + day * 500_000)
            },
            quality: match i % 10 {
                3 => Some(quality::ESTIMATED_LINEAR),
                4 => Some(quality::MANUALLY_EDITED),
                _ => None,
            },
        }
    };
    let export = |i: i64| IntervalValue {
        start: START + i * 900,
        duration_secs: 900,
        value: Some(i * 100_000),
        quality: Some(quality::RAW),
    };
    Feed {
        base_uri: "https://utility.example/DataCustodian".into(),
        subscription_id: 5,
        title: "Green Button Usage Feed for <Smith & Sons>".into(),
        updated: "2024-03-13T06:00:00Z".parse().unwrap(),
        usage_points: vec![
            UsagePoint {
                id: 1,
                title: "12 \"Main\" St".into(),
                kind: ServiceKind::Electricity,
                tz_offset_secs: -18_000,
                dst: Some(Dst {
                    offset_secs: 3600,
                    start_rule: 0x360E_2000,
                    end_rule: 0xB40E_2000,
                }),
                readings: vec![
                    Reading {
                        title: "kWh delivered".into(),
                        commodity: COMMODITY_ELECTRICITY,
                        kind: KIND_ENERGY,
                        uom: uom::WH,
                        unit_exponent: 3,
                        flow: FlowDirection::Forward,
                        interval_secs: 900,
                        power_of_ten: None,
                        blocks: vec![day_block(0, 24, kwh(0)), day_block(1, 24, kwh(1))],
                    },
                    Reading {
                        title: "kWh received".into(),
                        commodity: COMMODITY_ELECTRICITY,
                        kind: KIND_ENERGY,
                        uom: uom::WH,
                        unit_exponent: 3,
                        flow: FlowDirection::Reverse,
                        interval_secs: 900,
                        power_of_ten: None,
                        blocks: vec![day_block(0, 24, export)],
                    },
                ],
            },
            UsagePoint {
                id: 2,
                title: "Water".into(),
                kind: ServiceKind::Water,
                tz_offset_secs: -18_000,
                dst: None,
                readings: vec![Reading {
                    title: "m3".into(),
                    commodity: 9,
                    kind: KIND_ENERGY,
                    uom: uom::M3,
                    unit_exponent: 0,
                    flow: FlowDirection::Forward,
                    interval_secs: 3600,
                    power_of_ten: None,
                    blocks: vec![Block {
                        start: START,
                        duration_secs: 23 * 3600,
                        readings: (0..23)
                            .map(|i| IntervalValue {
                                start: START + i * 3600,
                                duration_secs: 3600,
                                value: Some(i * 12_500),
                                quality: None,
                            })
                            .collect(),
                    }],
                }],
            },
        ],
    }
}

fn child<'a, 'i>(n: roxmltree::Node<'a, 'i>, ns: &str, name: &str) -> Option<roxmltree::Node<'a, 'i>> {
    n.children().find(|c| c.has_tag_name((ns, name)))
}

fn int(n: roxmltree::Node<'_, '_>, name: &str) -> i64 {
    child(n, ESPI_NS, name)
        .and_then(|c| c.text())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing in {:?}", n.tag_name()))
}

fn content<'a, 'i>(e: roxmltree::Node<'a, 'i>) -> roxmltree::Node<'a, 'i> {
    child(e, ATOM_NS, "content")
        .and_then(|c| c.first_element_child())
        .expect("content")
}

#[test]
fn the_feed_parses_back_with_its_structure_and_values() {
    let input = feed();
    let xml = write_feed(&input).unwrap();
    let doc = roxmltree::Document::parse(&xml).unwrap();
    let root = doc.root_element();
    assert!(root.has_tag_name((ATOM_NS, "feed")));
    assert_eq!(
        child(root, ATOM_NS, "title").and_then(|t| t.text()),
        Some("Green Button Usage Feed for <Smith & Sons>")
    );
    let entries: Vec<_> = root.children().filter(|c| c.has_tag_name((ATOM_NS, "entry"))).collect();
    // 2 usage points, 2 local time parameters, 3 meter readings, 3 reading types, 4 blocks.
    assert_eq!(entries.len(), 14);

    let links = |e: roxmltree::Node<'_, '_>, rel: &str| -> Vec<String> {
        e.children()
            .filter(|c| c.has_tag_name((ATOM_NS, "link")) && c.attribute("rel") == Some(rel))
            .filter_map(|c| c.attribute("href").map(str::to_string))
            .collect()
    };
    let mut by_self: HashMap<String, roxmltree::Node<'_, '_>> = HashMap::new();
    for e in &entries {
        let s = links(*e, "self");
        assert_eq!(s.len(), 1, "every entry has one self link");
        assert_eq!(child(*e, ATOM_NS, "id").and_then(|i| i.text()), Some(s[0].as_str()));
        assert_eq!(links(*e, "up").len(), 1, "every entry has an up link");
        by_self.insert(s[0].clone(), *e);
    }

    let up1 = content(by_self["https://utility.example/DataCustodian/espi/1_1/resource/Subscription/5/UsagePoint/1"]);
    assert!(up1.has_tag_name((ESPI_NS, "UsagePoint")));
    assert_eq!(int(child(up1, ESPI_NS, "ServiceCategory").unwrap(), "kind"), 0);
    let ltp = content(by_self["https://utility.example/DataCustodian/espi/1_1/resource/LocalTimeParameters/1"]);
    assert_eq!(int(ltp, "tzOffset"), -18_000);
    assert_eq!(int(ltp, "dstOffset"), 3600);
    assert_eq!(
        child(ltp, ESPI_NS, "dstStartRule").and_then(|n| n.text()),
        Some("360E2000")
    );

    // Every MeterReading names one ReadingType that exists, and its blocks hang below it.
    let mut seen_types = HashSet::new();
    let mut checked_values = 0;
    let all_readings: Vec<(&UsagePoint, &Reading, usize)> = input
        .usage_points
        .iter()
        .flat_map(|up| up.readings.iter().enumerate().map(move |(i, r)| (up, r, i + 1)))
        .collect();
    for (up, r, n) in all_readings {
        let href = format!(
            "https://utility.example/DataCustodian/espi/1_1/resource/Subscription/5/UsagePoint/{}/MeterReading/{n}",
            up.id
        );
        let mr = by_self[&href];
        assert!(content(mr).has_tag_name((ESPI_NS, "MeterReading")));
        let types: Vec<String> = links(mr, "related")
            .into_iter()
            .filter(|l| l.contains("/ReadingType/"))
            .collect();
        assert_eq!(types.len(), 1, "{href}: one ReadingType");
        assert!(seen_types.insert(types[0].clone()), "ReadingType per MeterReading");
        let rt = content(by_self[&types[0]]);
        assert_eq!(int(rt, "uom"), i64::from(r.uom));
        assert_eq!(int(rt, "flowDirection"), i64::from(r.flow.code()));
        assert_eq!(int(rt, "accumulationBehaviour"), 4);
        assert_eq!(int(rt, "intervalLength"), i64::from(r.interval_secs));
        let m = int(rt, "powerOfTenMultiplier");
        for (k, b) in r.blocks.iter().enumerate() {
            let block = content(by_self[&format!("{href}/IntervalBlock/{}", k + 1)]);
            let interval = child(block, ESPI_NS, "interval").unwrap();
            let (bs, bd) = (int(interval, "start"), int(interval, "duration"));
            assert_eq!((bs, bd), (b.start, i64::from(b.duration_secs)));
            let readings: Vec<_> = block
                .children()
                .filter(|c| c.has_tag_name((ESPI_NS, "IntervalReading")))
                .collect();
            let wanted: Vec<&IntervalValue> = b.readings.iter().filter(|v| v.value.is_some()).collect();
            assert_eq!(readings.len(), wanted.len(), "missing values are left out");
            for (x, v) in readings.iter().zip(wanted) {
                let tp = child(*x, ESPI_NS, "timePeriod").unwrap();
                let (s, d) = (int(tp, "start"), int(tp, "duration"));
                assert!(s >= bs && s + d <= bs + bd, "reading inside its block");
                assert_eq!(s, v.start);
                // value × 10^m in uom = micros × 10^(e − 6) in uom.
                let value = int(*x, "value") as i128;
                let lhs = value * 10i128.pow((m - i64::from(r.unit_exponent) + 6) as u32);
                assert_eq!(lhs, i128::from(v.value.unwrap()));
                let q = child(*x, ESPI_NS, "ReadingQuality").map(|rq| int(rq, "quality") as u8);
                assert_eq!(q, v.quality);
                checked_values += 1;
            }
        }
    }
    assert_eq!(checked_values, 95 + 95 + 96 + 23);
}

#[test]
fn the_multiplier_keeps_values_exact() {
    let xml = write_feed(&feed()).unwrap();
    // Delivered kWh are whole Wh (0), received ones tenths of a kWh (0); water steps of
    // 0.0125 m³ (12.5 L) are finer than litres (−3), so micro-m³ (−6).
    assert!(xml.contains("<espi:value>1234</espi:value>"), "1.234 kWh is 1234 Wh");
    let powers: Vec<&str> = xml
        .split("<espi:powerOfTenMultiplier>")
        .skip(1)
        .filter_map(|s| s.split('<').next())
        .collect();
    assert_eq!(powers, ["0", "0", "-6"]);
}

#[test]
fn text_is_escaped() {
    let xml = write_feed(&feed()).unwrap();
    assert!(xml.contains("Smith &amp; Sons"));
    assert!(xml.contains("&lt;Smith"));
    assert!(xml.contains("12 &quot;Main&quot; St"));
    let mut f = feed();
    f.title = "bell \u{7}".into();
    assert!(write_feed(&f).unwrap_err().to_string().contains("control"));
    f.title = "x".repeat(MAX_TEXT + 1);
    assert!(write_feed(&f).is_err());
}

#[test]
fn refuses_readings_outside_their_block_and_inexact_values() {
    let mut f = feed();
    f.usage_points[0].readings[0].blocks[0].readings[5].start -= 3600 * 2;
    let e = write_feed(&f).unwrap_err();
    assert!(
        matches!(
            e,
            crate::Error::Invalid {
                field: "timePeriod",
                ..
            }
        ),
        "{e}"
    );
    let mut f = feed();
    f.usage_points[0].readings[0].power_of_ten = Some(3);
    let e = write_feed(&f).unwrap_err();
    assert!(matches!(e, crate::Error::Invalid { field: "value", .. }), "{e}");
    let mut f = feed();
    f.usage_points[0].readings[0].power_of_ten = Some(4);
    assert!(write_feed(&f).unwrap_err().to_string().contains("UnitMultiplierKind"));
    let mut f = feed();
    f.usage_points[0].readings[0].blocks[0].readings[0].value = Some(1);
    f.usage_points[0].readings[0].unit_exponent = 0;
    f.usage_points[0].readings[0].blocks[0].readings[1].value = Some(i64::MAX);
    assert!(write_feed(&f).is_err());
    let mut f = feed();
    f.usage_points[0].readings[0].blocks[0].duration_secs = 0;
    assert!(write_feed(&f).is_err());
}
