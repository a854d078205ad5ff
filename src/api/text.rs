//! Texts a client sends (notes, reasons, names, file names) are checked before they reach the
//! audit trail, the log or a screen: no control characters (a newline would forge a log
//! line, an escape sequence would repaint a clerk's terminal), and a bounded length: the
//! field's own limit from [`crate::model::limits`] where the field is one the store keeps (a
//! meter id, a route, a reason), else [`MAX_TEXT`].

use serde::Serialize;

use crate::model::limits::{self, Field, quote};

/// Longest text a request may carry in a field without a limit of its own (a file name, a
/// date); file contents travel as uploads, not as text.
pub const MAX_TEXT: usize = Field::Note.max();

/// Checks one text of at most [`MAX_TEXT`] bytes: `what` names it in the message.
pub fn check_text(what: &str, text: &str) -> Result<(), String> {
    check_as(what, text, MAX_TEXT)
}

fn check_as(what: &str, text: &str, max: usize) -> Result<(), String> {
    if text.len() > max {
        return Err(format!(
            "{what} is {} bytes long; at most {max} are accepted (starts {})",
            text.len(),
            quote(text)
        ));
    }
    if let Some((i, c)) = text.chars().enumerate().find(|(_, c)| limits::is_forbidden(*c)) {
        return Err(format!(
            "{what} contains a control character (U+{:04X} at character {}): texts must be plain, one line",
            c as u32,
            i + 1
        ));
    }
    Ok(())
}

/// Checks every text of a request (every string in its JSON form, named by its field).
pub fn check_all(value: &impl Serialize) -> Result<(), String> {
    let value = serde_json::to_value(value).map_err(|e| format!("the request cannot be encoded: {e}"))?;
    walk(&value, "the request", MAX_TEXT)
}

fn walk(value: &serde_json::Value, field: &str, max: usize) -> Result<(), String> {
    match value {
        serde_json::Value::String(s) => check_as(field, s, max),
        serde_json::Value::Array(items) => items.iter().try_for_each(|v| walk(v, field, max)),
        serde_json::Value::Object(map) => map
            .iter()
            .try_for_each(|(k, v)| walk(v, &field_name(k), limit_of(k).map_or(MAX_TEXT, Field::max))),
        _ => Ok(()),
    }
}

/// The stored field a request's key fills, for its limit (`meters change W-1 --new-serial`
/// becomes a meter id; `review accept --reason` a note).
fn limit_of(key: &str) -> Option<Field> {
    Some(match key {
        "meter" | "meter_id" | "old_serial" | "new_serial" => Field::MeterId,
        "route" => Field::RouteId,
        "account" => Field::Account,
        "reason" | "reason_text" | "text" | "note" | "outcome" => Field::Note,
        "value" | "install_read" | "removal_read" => Field::RawValue,
        "client" | "name" | "channel" => Field::Name,
        "device" => Field::Reader,
        _ => return None,
    })
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

    #[test]
    fn stored_fields_have_their_own_limits_and_errors_stay_short() {
        let e = check_all(&serde_json::json!({"meters": {"change": {"meter": "M".repeat(65)}}})).unwrap_err();
        assert!(
            e.starts_with("the meter is 65 bytes long; at most 64 are accepted"),
            "{e}"
        );
        assert!(check_all(&serde_json::json!({"meter": "M".repeat(64)})).is_ok());
        let e = check_all(&serde_json::json!({"route": "R".repeat(1 << 20)})).unwrap_err();
        assert!(e.len() < 200, "{e}");
        assert!(check_all(&serde_json::json!({"reason": "r".repeat(4096)})).is_ok());
        assert!(check_all(&serde_json::json!({"reason": "r".repeat(4097)})).is_err());
        assert!(check_all(&serde_json::json!({"client": "c".repeat(65)})).is_err());
        // A field without a limit of its own still has MAX_TEXT.
        assert!(check_all(&serde_json::json!({"file": "f".repeat(MAX_TEXT)})).is_ok());
        assert!(check_all(&serde_json::json!({"file": "f".repeat(MAX_TEXT + 1)})).is_err());
    }
}
