//! The feed as XML text.
//!
//! Entries come in the order a reader resolves them: per usage point the `UsagePoint`, its
//! `LocalTimeParameters`, then per channel the `MeterReading`, its `ReadingType` and its
//! `IntervalBlock`s. Entry ids are the entries' resource URIs (Atom allows any IRI).
//!
//! Refused: a title or base URI longer than [`MAX_TEXT`] or holding control characters, a
//! zero interval length or block duration, a reading outside its block's interval, a value
//! that the chosen or given multiplier cannot write exactly inside `Int48`, a
//! `powerOfTenMultiplier` the schema does not list.

use std::fmt::Write as _;

use super::scale::{MULTIPLIERS, choose_multiplier, to_espi_value};
use super::{ACCUMULATION_DELTA_DATA, ATOM_NS, Block, ESPI_NS, Feed, MAX_TEXT, Reading, UsagePoint};
use crate::error::{Error, Result};

/// Escape text for an XML element or a double-quoted attribute.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// A title or URI: bounded, and free of characters XML 1.0 cannot carry.
fn text<'a>(field: &'static str, s: &'a str) -> Result<&'a str> {
    if s.chars().count() > MAX_TEXT {
        return Err(Error::invalid(field, format!("longer than {MAX_TEXT} characters")));
    }
    if s.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
        return Err(Error::invalid(field, "holds a control character"));
    }
    Ok(s)
}

/// One Atom entry around `content`.
struct Entry<'a> {
    href: &'a str,
    up: &'a str,
    related: &'a [&'a str],
    title: &'a str,
    content: &'a str,
}

fn entry(out: &mut String, updated: &str, e: &Entry<'_>) {
    let _ = write!(
        out,
        "<entry><id>{href}</id><link rel=\"self\" href=\"{href}\"/><link rel=\"up\" href=\"{up}\"/>",
        href = esc(e.href),
        up = esc(e.up)
    );
    for r in e.related {
        let _ = write!(out, "<link rel=\"related\" href=\"{}\"/>", esc(r));
    }
    let _ = writeln!(
        out,
        "<title>{}</title><published>{updated}</published><updated>{updated}</updated><content>{}</content></entry>",
        esc(e.title),
        e.content
    );
}

/// The feed as one XML document (UTF-8, `\n` after each entry).
pub fn write_feed(feed: &Feed) -> Result<String> {
    let base = text("base URI", &feed.base_uri)?.trim_end_matches('/');
    let updated = feed.updated.to_string();
    let root = format!("{base}/espi/1_1/resource");
    let subscription = format!("{root}/Subscription/{}", feed.subscription_id);
    let mut out = String::new();
    let _ = write!(
        out,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<feed xmlns=\"{ATOM_NS}\" xmlns:espi=\"{ESPI_NS}\">\n<id>{id}</id><title>{title}</title><updated>{updated}</updated><link rel=\"self\" href=\"{id}\"/>\n",
        id = esc(&subscription),
        title = esc(text("title", &feed.title)?),
    );
    let mut reading_types = 0u64;
    for up in &feed.usage_points {
        usage_point(&mut out, &root, &subscription, &updated, up, &mut reading_types)?;
    }
    out.push_str("</feed>\n");
    Ok(out)
}

fn usage_point(
    out: &mut String,
    root: &str,
    subscription: &str,
    updated: &str,
    up: &UsagePoint,
    reading_types: &mut u64,
) -> Result<()> {
    let href = format!("{subscription}/UsagePoint/{}", up.id);
    let ltp = format!("{root}/LocalTimeParameters/{}", up.id);
    let readings = format!("{href}/MeterReading");
    entry(
        out,
        updated,
        &Entry {
            href: &href,
            up: &format!("{subscription}/UsagePoint"),
            related: &[&readings, &ltp],
            title: text("title", &up.title)?,
            content: &format!(
                "<espi:UsagePoint><espi:ServiceCategory><espi:kind>{}</espi:kind></espi:ServiceCategory></espi:UsagePoint>",
                up.kind.code()
            ),
        },
    );
    let dst = up.dst.unwrap_or(super::Dst {
        offset_secs: 0,
        start_rule: 0,
        end_rule: 0,
    });
    entry(
        out,
        updated,
        &Entry {
            href: &ltp,
            up: &format!("{root}/LocalTimeParameters"),
            related: &[],
            title: "Local time parameters",
            content: &format!(
                "<espi:LocalTimeParameters><espi:dstEndRule>{:08X}</espi:dstEndRule><espi:dstOffset>{}</espi:dstOffset><espi:dstStartRule>{:08X}</espi:dstStartRule><espi:tzOffset>{}</espi:tzOffset></espi:LocalTimeParameters>",
                dst.end_rule, dst.offset_secs, dst.start_rule, up.tz_offset_secs
            ),
        },
    );
    for (i, r) in up.readings.iter().enumerate() {
        *reading_types += 1;
        meter_reading(out, root, &readings, updated, i + 1, *reading_types, r)?;
    }
    Ok(())
}

fn meter_reading(
    out: &mut String,
    root: &str,
    readings: &str,
    updated: &str,
    n: usize,
    reading_type: u64,
    r: &Reading,
) -> Result<()> {
    if r.interval_secs == 0 {
        return Err(Error::invalid("intervalLength", "zero"));
    }
    let values = r.blocks.iter().flat_map(|b| b.readings.iter().filter_map(|v| v.value));
    let multiplier = match r.power_of_ten {
        Some(m) if !MULTIPLIERS.contains(&m) => {
            return Err(Error::invalid(
                "powerOfTenMultiplier",
                format!("{m} is not a UnitMultiplierKind"),
            ));
        }
        Some(m) => m,
        None => choose_multiplier(r.unit_exponent, values).ok_or_else(|| {
            Error::invalid(
                "value",
                format!("no powerOfTenMultiplier writes every value of {:?} exactly", r.title),
            )
        })?,
    };
    let href = format!("{readings}/{n}");
    let rt = format!("{root}/ReadingType/{reading_type}");
    let blocks = format!("{href}/IntervalBlock");
    entry(
        out,
        updated,
        &Entry {
            href: &href,
            up: readings,
            related: &[&blocks, &rt],
            title: text("title", &r.title)?,
            content: "<espi:MeterReading/>",
        },
    );
    entry(
        out,
        updated,
        &Entry {
            href: &rt,
            up: &format!("{root}/ReadingType"),
            related: &[],
            title: "Type of Meter Reading Data",
            content: &format!(
                "<espi:ReadingType><espi:accumulationBehaviour>{ACCUMULATION_DELTA_DATA}</espi:accumulationBehaviour><espi:commodity>{}</espi:commodity><espi:flowDirection>{}</espi:flowDirection><espi:intervalLength>{}</espi:intervalLength><espi:kind>{}</espi:kind><espi:powerOfTenMultiplier>{multiplier}</espi:powerOfTenMultiplier><espi:uom>{}</espi:uom></espi:ReadingType>",
                r.commodity,
                r.flow.code(),
                r.interval_secs,
                r.kind,
                r.uom
            ),
        },
    );
    for (k, b) in r.blocks.iter().enumerate() {
        let content = block(b, r.unit_exponent, multiplier)?;
        entry(
            out,
            updated,
            &Entry {
                href: &format!("{blocks}/{}", k + 1),
                up: &blocks,
                related: &[],
                title: "",
                content: &content,
            },
        );
    }
    Ok(())
}

fn block(b: &Block, unit_exponent: i8, multiplier: i8) -> Result<String> {
    if b.duration_secs == 0 {
        return Err(Error::invalid("interval", "a block of zero duration"));
    }
    let end = b.start.saturating_add(i64::from(b.duration_secs));
    let mut s = format!(
        "<espi:IntervalBlock><espi:interval><espi:duration>{}</espi:duration><espi:start>{}</espi:start></espi:interval>",
        b.duration_secs, b.start
    );
    for (i, v) in b.readings.iter().enumerate() {
        let v_end = v.start.saturating_add(i64::from(v.duration_secs));
        if v.duration_secs == 0 || v.start < b.start || v_end > end {
            return Err(Error::invalid(
                "timePeriod",
                format!(
                    "reading {} ({}+{}s) is not inside its block ({}+{}s)",
                    i + 1,
                    v.start,
                    v.duration_secs,
                    b.start,
                    b.duration_secs
                ),
            ));
        }
        let Some(micros) = v.value else { continue };
        let value = to_espi_value(micros, unit_exponent, multiplier).ok_or_else(|| {
            Error::invalid(
                "value",
                format!(
                    "reading {}: {micros} micro-units are not exact at powerOfTenMultiplier {multiplier}",
                    i + 1
                ),
            )
        })?;
        s.push_str("<espi:IntervalReading>");
        if let Some(q) = v.quality {
            let _ = write!(
                s,
                "<espi:ReadingQuality><espi:quality>{q}</espi:quality></espi:ReadingQuality>"
            );
        }
        let _ = write!(
            s,
            "<espi:timePeriod><espi:duration>{}</espi:duration><espi:start>{}</espi:start></espi:timePeriod><espi:value>{value}</espi:value></espi:IntervalReading>",
            v.duration_secs, v.start
        );
    }
    s.push_str("</espi:IntervalBlock>");
    Ok(s)
}
