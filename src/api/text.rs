//! Texts a client sends (notes, reasons, names, file names) are checked before they reach the
//! audit trail, the log or a screen: no control characters (a newline would forge a log
//! line, an escape sequence would repaint a clerk's terminal), and a bounded length.

use serde::Serialize;

/// Longest text a request may carry in one field (a note, a reason); file contents travel as
/// uploads, not as text.
pub const MAX_TEXT: usize = 4096;

/// Characters that are not control characters (Unicode category Cc) but rearrange or break what
/// a screen or a log shows: the bidirectional marks, embeddings, overrides and isolates (the
/// "Trojan Source" characters, CVE-2021-42574) and the line and paragraph separators.
fn rearranges_text(c: char) -> bool {
    matches!(c, '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{2028}' | '\u{2029}')
}

/// Checks one text: `what` names it in the message.
pub fn check_text(what: &str, text: &str) -> Result<(), String> {
    if let Some((i, c)) = text
        .chars()
        .enumerate()
        .find(|(_, c)| c.is_control() || rearranges_text(*c))
    {
        return Err(format!(
            "{what} contains a control character (U+{:04X} at character {}): texts must be plain, one line",
            c as u32,
            i + 1
        ));
    }
    if text.len() > MAX_TEXT {
        return Err(format!(
            "{what} is {} bytes long; at most {MAX_TEXT} are accepted",
            text.len()
        ));
    }
    Ok(())
}

/// Checks every text of a request (every string in its JSON form, named by its field).
pub fn check_all(value: &impl Serialize) -> Result<(), String> {
    let value = serde_json::to_value(value).map_err(|e| format!("the request cannot be encoded: {e}"))?;
    walk(&value, "the request")
}

fn walk(value: &serde_json::Value, field: &str) -> Result<(), String> {
    match value {
        serde_json::Value::String(s) => check_text(field, s),
        serde_json::Value::Array(items) => items.iter().try_for_each(|v| walk(v, field)),
        serde_json::Value::Object(map) => map.iter().try_for_each(|(k, v)| walk(v, &field_name(k))),
        _ => Ok(()),
    }
}

/// How a field is named in a refusal: `the note`, `the reason`, `the meter`.
fn field_name(key: &str) -> String {
    match key {
        "text" => "the note".into(),
        other => format!("the {}", other.replace('_', " ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_named() {
        let e = check_text("reason", "ok\u{1b}[31m").unwrap_err();
        assert!(e.contains("reason") && e.contains("U+001B at character 3"), "{e}");
        assert!(check_text("note", "a plain note · with ü").is_ok());
        // A right-to-left override would show "meter 0021" as something else on a screen.
        let e = check_text("note", "meter \u{202E}1200").unwrap_err();
        assert!(e.contains("U+202E at character 7"), "{e}");
        assert!(check_text("note", "a\u{2028}b").is_err());
        let e = check_all(&serde_json::json!({"action": {"reason_text": "x\ny"}})).unwrap_err();
        assert!(e.starts_with("the reason text contains"), "{e}");
        assert!(check_text("note", &"x".repeat(MAX_TEXT + 1)).is_err());
    }
}
