//! The `[meterbus]` configuration section: serial ports meterd reads meters on, and which
//! device reading is which meter's register.
//!
//! ```toml
//! # Meter-type profiles for IEC 62056-21 probe sessions (see ProbeConfig for every key).
//! [meterbus.profiles.lgz-zmd120]
//! baud_switch = false            # this type ignores the rate it proposes
//!
//! [[meterbus.probe]]             # a fixed optical head, read on a schedule
//! port = "/dev/ttyUSB0"
//! profile = "lgz-zmd120"
//! interval_secs = 900
//!
//! [[meterbus.mbus]]              # a wired M-Bus master (2400 8E1)
//! port = "/dev/ttyUSB1"
//! primary = [5, 6]
//! secondary = ["12345678"]
//! scan = false                   # true: scan the segment at start and poll what answers
//! interval_secs = 900
//!
//! [[meterbus.p1]]                # a DSMR P1 port
//! port = "/dev/ttyUSB2"
//! dsmr = "5"                     # "5"/"4": 115200 8N1; "2.2"/"3": 9600 7E1
//! store_every_secs = 900
//!
//! [[meterbus.meters]]            # device → meter map
//! meter_id = "W-1001"
//! mbus_id = "12345678"           # or mbus_address = 5, iec_serial = "...", dsmr_equipment = "..."
//! register = "volume"            # M-Bus quantity, or an OBIS address such as "1.8.0"
//! storage = 0
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;

use meterd_protocols::decode::Protocol;
use meterd_protocols::iec62056_21::ProbeConfig;
use serde::{Deserialize, Serialize};

use super::Device;

/// The whole section.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MeterbusConfig {
    /// IEC 62056-21 meter-type profiles by name (`meterd poll probe --profile NAME`).
    pub profiles: BTreeMap<String, ProbeConfig>,
    /// Fixed optical probes read on a schedule.
    pub probe: Vec<ProbePort>,
    /// Wired M-Bus masters.
    pub mbus: Vec<MbusPort>,
    /// DSMR P1 listeners.
    pub p1: Vec<P1Port>,
    /// Which device reading is which meter's register.
    pub meters: Vec<MeterMap>,
}

/// One optical probe port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProbePort {
    pub port: PathBuf,
    /// A profile of `[meterbus.profiles]`; the defaults of a mode C meter when absent.
    #[serde(default)]
    pub profile: Option<String>,
    /// Seconds between readouts.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
}

/// One M-Bus segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MbusPort {
    pub port: PathBuf,
    /// Line speed (300 and 9600 exist too; data format is always 8E1).
    #[serde(default = "default_mbus_baud")]
    pub baud: u32,
    /// Slaves polled by primary address.
    #[serde(default)]
    pub primary: Vec<u8>,
    /// Slaves polled by secondary address (8-digit id or the 16-character form).
    #[serde(default)]
    pub secondary: Vec<String>,
    /// Scan the segment by secondary address at start and poll every slave found.
    #[serde(default)]
    pub scan: bool,
    /// Seconds between polls of the segment.
    #[serde(default = "default_interval")]
    pub interval_secs: u64,
    #[serde(default)]
    pub timing: MbusTiming,
}

/// Timing of an M-Bus master.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MbusTiming {
    /// Silence after a request after which the slave is taken not to answer (EN 13757-2
    /// allows 330 bit times + 50 ms; converters add latency).
    pub response_timeout_ms: u64,
    /// Repeats of a request that got no answer or a corrupt one (same FCB).
    pub retries: u32,
    /// Most telegrams of one multi-telegram readout.
    pub max_telegrams: usize,
}

impl Default for MbusTiming {
    fn default() -> Self {
        MbusTiming {
            response_timeout_ms: 500,
            retries: 2,
            max_telegrams: 16,
        }
    }
}

/// One P1 port.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P1Port {
    pub port: PathBuf,
    /// DSMR version of the meter: `5`, `4` (115200 8N1) or `3`, `2.2` (9600 7E1).
    #[serde(default = "default_dsmr")]
    pub dsmr: String,
    /// Store at most one read per meter this often (DSMR 5 sends every second); every
    /// telegram is still checked and a refused one quarantined. 0 stores every telegram.
    #[serde(default = "default_interval")]
    pub store_every_secs: u64,
}

/// One meter register read from a device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MeterMap {
    /// The meter as billing knows it.
    pub meter_id: String,
    /// M-Bus identification (8 digits), wired or wireless.
    #[serde(default)]
    pub mbus_id: Option<String>,
    /// M-Bus primary address (with `port` when several segments reuse addresses).
    #[serde(default)]
    pub mbus_address: Option<u8>,
    /// IEC 62056-21 meter serial (the readout's `0.0.0`/`C.1.0`, else the identification).
    #[serde(default)]
    pub iec_serial: Option<String>,
    /// DSMR equipment id (`96.1.1`).
    #[serde(default)]
    pub dsmr_equipment: Option<String>,
    /// Only frames from this port.
    #[serde(default)]
    pub port: Option<PathBuf>,
    /// The register: an M-Bus quantity (`volume`, `energy`, ...) or an OBIS address (`1.8.0`).
    pub register: String,
    /// M-Bus storage number, tariff and subunit of the register.
    #[serde(default)]
    pub storage: u64,
    #[serde(default)]
    pub tariff: u64,
    #[serde(default)]
    pub subunit: u64,
    /// The unit the register must be in (`m3`, `kWh`); a frame in another unit is quarantined.
    #[serde(default)]
    pub unit: Option<String>,
}

impl MeterMap {
    pub(super) fn matches(&self, d: &Device<'_>) -> bool {
        if self.port.as_deref().is_some_and(|p| p.as_os_str() != d.port) {
            return false;
        }
        match d.protocol {
            Protocol::Mbus | Protocol::Wmbus => {
                self.mbus_id.as_deref() == Some(d.id) || (self.mbus_address.is_some() && self.mbus_address == d.address)
            }
            Protocol::Iec62056_21 => self.iec_serial.as_deref() == Some(d.id),
            Protocol::Dsmr => self.dsmr_equipment.as_deref() == Some(d.id),
            _ => false,
        }
    }
}

fn default_interval() -> u64 {
    900
}
fn default_mbus_baud() -> u32 {
    2400
}
fn default_dsmr() -> String {
    "5".into()
}

impl MeterbusConfig {
    /// True when any port is configured (the daemon starts the component only then).
    pub fn is_configured(&self) -> bool {
        !(self.probe.is_empty() && self.mbus.is_empty() && self.p1.is_empty())
    }

    /// Checks what serde cannot: one device key per map entry, known profiles and versions.
    pub fn check(&self) -> Result<(), String> {
        for (i, m) in self.meters.iter().enumerate() {
            let keys = [
                m.mbus_id.is_some(),
                m.mbus_address.is_some(),
                m.iec_serial.is_some(),
                m.dsmr_equipment.is_some(),
            ];
            if keys.iter().filter(|k| **k).count() != 1 {
                return Err(format!(
                    "meterbus.meters[{i}] ({}): give exactly one of mbus_id, mbus_address, iec_serial, dsmr_equipment",
                    m.meter_id
                ));
            }
            if m.register.trim().is_empty() {
                return Err(format!("meterbus.meters[{i}] ({}): register is empty", m.meter_id));
            }
        }
        for (i, p) in self.probe.iter().enumerate() {
            if let Some(name) = &p.profile
                && !self.profiles.contains_key(name)
            {
                return Err(format!(
                    "meterbus.probe[{i}]: profile {name:?} is not in [meterbus.profiles]"
                ));
            }
        }
        for (i, p) in self.p1.iter().enumerate() {
            super::line::p1_settings(&p.dsmr).map_err(|e| format!("meterbus.p1[{i}].dsmr: {e}"))?;
        }
        for (i, m) in self.mbus.iter().enumerate() {
            for s in &m.secondary {
                s.parse::<meterd_protocols::mbus::link::SecondaryAddress>()
                    .map_err(|e| format!("meterbus.mbus[{i}].secondary {s:?}: {e}"))?;
            }
            if let Some(a) = m.primary.iter().find(|a| **a > 250) {
                return Err(format!("meterbus.mbus[{i}].primary: {a} is above 250"));
            }
        }
        Ok(())
    }

    /// The profile a probe uses (`None` = defaults); an unknown name is an error.
    pub fn profile(&self, name: Option<&str>) -> Result<ProbeConfig, String> {
        match name {
            None => Ok(ProbeConfig::default()),
            Some(n) => self.profiles.get(n).cloned().ok_or_else(|| {
                let known: Vec<&str> = self.profiles.keys().map(String::as_str).collect();
                format!(
                    "no probe profile {n:?} in [meterbus.profiles] (known: {})",
                    known.join(", ")
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_section_parses_and_checks() {
        let text = r#"
            [profiles.lgz]
            baud_switch = false
            protocol_char = "2"
            [[probe]]
            port = "/dev/ttyUSB0"
            profile = "lgz"
            [[mbus]]
            port = "/dev/ttyUSB1"
            primary = [5]
            secondary = ["12345678"]
            [mbus.timing]
            response_timeout_ms = 200
            [[p1]]
            port = "/dev/ttyUSB2"
            dsmr = "2.2"
            [[meters]]
            meter_id = "W-1"
            mbus_id = "12345678"
            register = "volume"
        "#;
        let c: MeterbusConfig = toml::from_str(text).unwrap();
        c.check().unwrap();
        assert!(!c.profile(Some("lgz")).unwrap().baud_switch);
        assert_eq!(c.mbus[0].baud, 2400);
        assert_eq!(c.mbus[0].timing.retries, 2);
        assert!(c.profile(Some("nope")).unwrap_err().contains("lgz"));
    }

    #[test]
    fn mistakes_are_refused() {
        let bad = |t: &str| {
            toml::from_str::<MeterbusConfig>(t)
                .map_err(|e| e.to_string())
                .and_then(|c| c.check())
        };
        assert!(
            bad("[[mbus]]\nport = \"x\"\nprimari = [1]\n")
                .unwrap_err()
                .contains("primari")
        );
        assert!(
            bad("[[meters]]\nmeter_id = \"a\"\nregister = \"volume\"\n")
                .unwrap_err()
                .contains("exactly one")
        );
        assert!(
            bad("[[p1]]\nport = \"x\"\ndsmr = \"6\"\n")
                .unwrap_err()
                .contains("dsmr")
        );
        assert!(
            bad("[[probe]]\nport = \"x\"\nprofile = \"q\"\n")
                .unwrap_err()
                .contains("profile")
        );
        assert!(
            bad("[[mbus]]\nport = \"x\"\nsecondary = [\"12\"]\n")
                .unwrap_err()
                .contains("secondary")
        );
    }
}
