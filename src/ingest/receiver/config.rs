//! One `[[receiver]]` entry of `meterd.toml`.

use std::path::PathBuf;

use meterd_protocols::receiver::{Kind, LinkMode};
use serde::{Deserialize, Serialize};

/// A wM-Bus receiver on a serial port or a FIFO; the daemon listens to it continuously.
///
/// ```toml
/// [[receiver]]
/// port = "/dev/meterd/wmbus-1"   # stable udev name (systemd/99-meterd-receiver.rules)
/// kind = "im871a"                # im871a | amber | cul | rtl_wmbus | rtl_433
/// mode = "T1"                    # S1 | T1 | C1 | N (N: amber AMB3665 only)
/// name = "depot-roof"            # gateway name in health (default: the port)
/// reset_after_secs = 82800       # reset a stick silent this long (23 h)
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReceiverConfig {
    /// Serial device (prefer stable udev names over `/dev/ttyUSB0`) or FIFO.
    pub port: PathBuf,
    /// The receiver model: `im871a`, `amber`, `cul`, `rtl_wmbus`, `rtl_433`.
    pub kind: String,
    /// Link mode set on open (sticks only; rtl_wmbus and rtl_433 take theirs on their own
    /// command line). Default T1.
    #[serde(default)]
    pub mode: Option<String>,
    /// Line speed, 8N1; default per kind (iM871A 57600, Amber 9600, CUL 38400, others 115200).
    #[serde(default)]
    pub baud: Option<u32>,
    /// The gateway name its telegrams are counted under (default: the port).
    #[serde(default)]
    pub name: Option<String>,
    /// A receiver that heard no telegram this long is reset (the stick's reset command, or the
    /// port closed and reopened) and its mode set again.
    #[serde(default = "default_reset_after_secs")]
    pub reset_after_secs: u64,
}

/// 23 hours, the reference decoder's default (`mbus.md`).
fn default_reset_after_secs() -> u64 {
    23 * 3600
}

impl ReceiverConfig {
    /// The kind, checked.
    pub fn kind(&self) -> Result<Kind, String> {
        self.kind
            .parse::<Kind>()
            .map_err(|e| format!("receiver {}: {e}", self.port.display()))
    }

    /// The link mode to set (None for the SDR decoders), checked against the kind.
    pub fn link_mode(&self) -> Result<Option<LinkMode>, String> {
        let kind = self.kind()?;
        let port = self.port.display();
        match (&self.mode, kind.sets_mode()) {
            (Some(m), false) => Err(format!(
                "receiver {port}: kind {kind} takes its mode on {kind}'s own command line; remove mode = {m:?}"
            )),
            (None, false) => Ok(None),
            (m, true) => {
                let mode: LinkMode = m
                    .as_deref()
                    .unwrap_or("T1")
                    .parse()
                    .map_err(|e| format!("receiver {port}: {e}"))?;
                if !kind.modes().contains(&mode) {
                    let known: Vec<String> = kind.modes().iter().map(ToString::to_string).collect();
                    return Err(format!(
                        "receiver {port}: a {kind} receiver has no mode {mode} (it has {})",
                        known.join(", ")
                    ));
                }
                Ok(Some(mode))
            }
        }
    }

    pub fn baud(&self) -> u32 {
        self.baud.unwrap_or(match self.kind() {
            Ok(Kind::Im871a) => 57_600,
            Ok(Kind::Amber) => 9_600,
            Ok(Kind::Cul) => 38_400,
            _ => 115_200,
        })
    }

    /// The gateway name its telegrams are counted under.
    pub fn gateway(&self) -> String {
        self.name.clone().unwrap_or_else(|| self.port.display().to_string())
    }

    /// Checks what would otherwise fail at run time.
    pub fn check(&self) -> Result<(), String> {
        self.link_mode()?;
        let port = self.port.display();
        if self.reset_after_secs == 0 {
            return Err(format!("receiver {port}: reset_after_secs must be at least 1"));
        }
        if self.baud == Some(0) {
            return Err(format!("receiver {port}: baud must be above 0"));
        }
        crate::model::limits::check(crate::model::limits::Field::Gateway, "receiver name", &self.gateway())
            .map_err(|e| format!("receiver {port}: {e} (set a shorter name)"))?;
        Ok(())
    }
}

/// Checks every receiver and that no port is configured twice.
pub fn check_all(receivers: &[ReceiverConfig]) -> Result<(), String> {
    for (i, r) in receivers.iter().enumerate() {
        r.check()?;
        if receivers[..i].iter().any(|o| o.port == r.port) {
            return Err(format!("receiver {}: the port is configured twice", r.port.display()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Vec<ReceiverConfig>, String> {
        #[derive(Deserialize)]
        struct F {
            receiver: Vec<ReceiverConfig>,
        }
        let f: F = toml::from_str(text).map_err(|e| e.to_string())?;
        check_all(&f.receiver)?;
        Ok(f.receiver)
    }

    #[test]
    fn modes_are_checked_per_kind() {
        let r = parse("[[receiver]]\nport = \"/dev/a\"\nkind = \"im871a\"\n").unwrap();
        assert_eq!(r[0].link_mode().unwrap(), Some(LinkMode::T1));
        assert_eq!(
            (r[0].baud(), r[0].gateway().as_str(), r[0].reset_after_secs),
            (57_600, "/dev/a", 82_800)
        );
        let e = parse("[[receiver]]\nport = \"/dev/a\"\nkind = \"im871a\"\nmode = \"N\"\n").unwrap_err();
        assert!(e.contains("has no mode N"), "{e}");
        assert!(parse("[[receiver]]\nport = \"/dev/a\"\nkind = \"amber\"\nmode = \"N\"\n").is_ok());
        let e = parse("[[receiver]]\nport = \"/dev/a\"\nkind = \"rtl_433\"\nmode = \"T1\"\n").unwrap_err();
        assert!(e.contains("own command line"), "{e}");
        let e = parse("[[receiver]]\nport = \"/dev/a\"\nkind = \"cul\"\nmode = \"X9\"\n").unwrap_err();
        assert!(e.contains("unknown link mode"), "{e}");
        let e = parse("[[receiver]]\nport = \"/dev/a\"\nkind = \"stick\"\n").unwrap_err();
        assert!(e.contains("unknown receiver kind"), "{e}");
        let e = parse("[[receiver]]\nport = \"/dev/a\"\nkind = \"cul\"\nspeed = 1\n").unwrap_err();
        assert!(e.contains("unknown field"), "{e}");
        let e = parse(
            "[[receiver]]\nport = \"/dev/a\"\nkind = \"cul\"\n[[receiver]]\nport = \"/dev/a\"\nkind = \"amber\"\n",
        )
        .unwrap_err();
        assert!(e.contains("twice"), "{e}");
        let e = parse("[[receiver]]\nport = \"/dev/a\"\nkind = \"cul\"\nreset_after_secs = 0\n").unwrap_err();
        assert!(e.contains("at least 1"), "{e}");
    }
}
