//! Value information (EN 13757-3 §6.4): the VIF tables (primary, `FB` and `FD` extensions) and
//! the combinable VIFEs, as data. A code this table does not know is not an error: the record
//! is kept with its raw value and a `vif_…` quantity, the way x509-parser keeps unknown extensions.

/// Which VIF table a code belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Table {
    /// The primary table (VIF `00`–`7A`).
    Primary,
    /// First extension table (VIF `FB` + code).
    Fb,
    /// Second extension table (VIF `FD` + code).
    Fd,
    /// Third extension table (VIF `EF` + code), reserved by the standard.
    Ef,
    /// Plain-text unit (VIF `7C`/`FC`): the unit is ASCII in the record.
    PlainText,
    /// Manufacturer-specific VIF (`7F`/`FF`).
    Manufacturer,
    /// "Any VIF" (`7E`/`FE`), only meaningful in readout requests.
    Any,
}

/// What a VIF says the value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Meaning {
    /// A physical quantity: value × 10^`exp` in `unit`.
    Scaled {
        quantity: &'static str,
        unit: &'static str,
        exp: i8,
    },
    /// A duration counted in `unit` (`s`, `min`, `h`, `d`, `months`, `years`).
    Duration { quantity: &'static str, unit: &'static str },
    /// A date (type G) or date-time (type F or I, chosen by the data length).
    Date { quantity: &'static str },
    /// An identifier or version shown as its digits (`fabrication_no`, `firmware_version`...).
    Digits { quantity: &'static str },
    /// A plain count or bit field without unit (`error_flags`, `access_number`...).
    Count { quantity: &'static str },
    /// Not in the tables: kept raw.
    Unknown,
}

const TIME_UNITS: [&str; 4] = ["s", "min", "h", "d"];

fn n3(code: u8) -> i8 {
    (code & 0x07) as i8
}

fn n2(code: u8) -> i8 {
    (code & 0x03) as i8
}

/// The meaning of a code in a table.
pub fn meaning(table: Table, code: u8) -> Meaning {
    use Meaning::*;
    let scaled = |quantity, unit, exp| Scaled { quantity, unit, exp };
    match table {
        Table::Primary => match code {
            // Energy Wh: kWh from 10³ Wh up, the unit utilities bill in.
            0x00..=0x05 => scaled("energy", "Wh", n3(code) - 3),
            0x06..=0x07 => scaled("energy", "kWh", n3(code) - 6),
            0x08..=0x0F => scaled("energy", "J", n3(code)),
            0x10..=0x17 => scaled("volume", "m3", n3(code) - 6),
            0x18..=0x1F => scaled("mass", "kg", n3(code) - 3),
            0x20..=0x23 => Duration {
                quantity: "on_time",
                unit: TIME_UNITS[(code & 3) as usize],
            },
            0x24..=0x27 => Duration {
                quantity: "operating_time",
                unit: TIME_UNITS[(code & 3) as usize],
            },
            0x28..=0x2F => scaled("power", "W", n3(code) - 3),
            0x30..=0x37 => scaled("power", "J/h", n3(code)),
            0x38..=0x3F => scaled("volume_flow", "m3/h", n3(code) - 6),
            0x40..=0x47 => scaled("volume_flow", "m3/min", n3(code) - 7),
            0x48..=0x4F => scaled("volume_flow", "m3/s", n3(code) - 9),
            0x50..=0x57 => scaled("mass_flow", "kg/h", n3(code) - 3),
            0x58..=0x5B => scaled("flow_temperature", "°C", n2(code) - 3),
            0x5C..=0x5F => scaled("return_temperature", "°C", n2(code) - 3),
            0x60..=0x63 => scaled("temperature_difference", "K", n2(code) - 3),
            0x64..=0x67 => scaled("external_temperature", "°C", n2(code) - 3),
            0x68..=0x6B => scaled("pressure", "bar", n2(code) - 3),
            0x6C => Date { quantity: "date" },
            0x6D => Date { quantity: "date_time" },
            0x6E => Count { quantity: "hca_units" },
            0x70..=0x73 => Duration {
                quantity: "averaging_duration",
                unit: TIME_UNITS[(code & 3) as usize],
            },
            0x74..=0x77 => Duration {
                quantity: "actuality_duration",
                unit: TIME_UNITS[(code & 3) as usize],
            },
            0x78 => Digits {
                quantity: "fabrication_no",
            },
            0x79 => Digits {
                quantity: "enhanced_identification",
            },
            0x7A => Count {
                quantity: "bus_address",
            },
            _ => Unknown,
        },
        Table::Fb => match code {
            0x00..=0x01 => scaled("energy", "kWh", (code & 1) as i8 + 2),
            0x08..=0x09 => scaled("energy", "J", (code & 1) as i8 + 8),
            0x10..=0x11 => scaled("volume", "m3", (code & 1) as i8 + 2),
            0x18..=0x19 => scaled("mass", "kg", (code & 1) as i8 + 5),
            0x1A..=0x1B => scaled("relative_humidity", "%", (code & 1) as i8 - 1),
            0x28..=0x29 => scaled("power", "W", (code & 1) as i8 + 5),
            0x30..=0x31 => scaled("power", "J/h", (code & 1) as i8 + 8),
            0x74..=0x77 => scaled("temperature_limit", "°C", n2(code) - 3),
            _ => Unknown,
        },
        Table::Fd => match code {
            0x08 => Count {
                quantity: "access_number",
            },
            0x09 => Count { quantity: "medium" },
            0x0A => Digits {
                quantity: "manufacturer",
            },
            0x0B => Digits {
                quantity: "parameter_set",
            },
            0x0C => Digits {
                quantity: "model_version",
            },
            0x0D => Digits {
                quantity: "hardware_version",
            },
            0x0E => Digits {
                quantity: "firmware_version",
            },
            0x0F => Digits {
                quantity: "software_version",
            },
            0x10 => Digits {
                quantity: "customer_location",
            },
            0x11 => Digits { quantity: "customer" },
            0x16 => Digits { quantity: "password" },
            0x17 => Count {
                quantity: "error_flags",
            },
            0x18 => Count { quantity: "error_mask" },
            0x1A => Count {
                quantity: "digital_output",
            },
            0x1B => Count {
                quantity: "digital_input",
            },
            0x1C => scaled("baud_rate", "Bd", 0),
            0x20 => Count {
                quantity: "first_storage_no",
            },
            0x21 => Count {
                quantity: "last_storage_no",
            },
            0x22 => Count {
                quantity: "storage_block_size",
            },
            0x24..=0x27 => Duration {
                quantity: "storage_interval",
                unit: TIME_UNITS[(code & 3) as usize],
            },
            0x28 => Duration {
                quantity: "storage_interval",
                unit: "months",
            },
            0x29 => Duration {
                quantity: "storage_interval",
                unit: "years",
            },
            0x2C..=0x2F => Duration {
                quantity: "duration_since_readout",
                unit: TIME_UNITS[(code & 3) as usize],
            },
            0x30 => Date {
                quantity: "tariff_start",
            },
            0x3A => Count {
                quantity: "dimensionless",
            },
            0x40..=0x4F => scaled("voltage", "V", (code & 0x0F) as i8 - 9),
            0x50..=0x5F => scaled("current", "A", (code & 0x0F) as i8 - 12),
            0x60 => Count {
                quantity: "reset_counter",
            },
            0x61 => Count {
                quantity: "cumulation_counter",
            },
            0x70 => Date {
                quantity: "battery_change",
            },
            0x74 => Duration {
                quantity: "remaining_battery",
                unit: "d",
            },
            _ => Unknown,
        },
        Table::Ef | Table::PlainText | Table::Manufacturer | Table::Any => Unknown,
    }
}

/// How the combinable VIFEs after a code change the reading.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Modifiers {
    /// Appended to the quantity (`_backward`, `_future`, `_vife3A`...), so a consumer never
    /// mistakes a qualified value for the plain one.
    pub suffix: String,
    /// Appended to the unit (`/h` for "per hour").
    pub per: Option<&'static str>,
    /// Added to the exponent (multiplicative correction).
    pub exp: i8,
}

/// Interprets the combinable VIFEs (each with its extension bit still set as on the wire).
pub fn modifiers(vifes: &[u8]) -> Modifiers {
    let mut m = Modifiers::default();
    let mut i = 0;
    while i < vifes.len() {
        let v = vifes[i] & 0x7F;
        match v {
            0x00..=0x1F => m.suffix.push_str(&format!("_error{v:02X}")),
            0x20 => m.per = Some("/s"),
            0x21 => m.per = Some("/min"),
            0x22 => m.per = Some("/h"),
            0x23 => m.per = Some("/d"),
            0x24 => m.per = Some("/week"),
            0x25 => m.per = Some("/month"),
            0x26 => m.per = Some("/year"),
            0x3A => m.suffix.push_str("_uncorrected"),
            0x3B => m.suffix.push_str("_forward"),
            0x3C => m.suffix.push_str("_backward"),
            0x69 => m.suffix.push_str("_leakage"),
            0x6A => m.suffix.push_str("_overflow"),
            0x70..=0x77 => m.exp += (v & 0x07) as i8 - 6,
            0x7D => m.exp += 3,
            0x7E => m.suffix.push_str("_future"),
            0x7C => {
                let next = vifes.get(i + 1).map_or(0, |b| b & 0x7F);
                m.suffix.push_str(&format!("_vife7C{next:02X}"));
                i += 1;
            }
            0x7F => {
                // Everything after this VIFE is the manufacturer's.
                m.suffix.push_str("_mfct");
                break;
            }
            _ => m.suffix.push_str(&format!("_vife{v:02X}")),
        }
        i += 1;
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_table_scales() {
        assert_eq!(
            meaning(Table::Primary, 0x13),
            Meaning::Scaled {
                quantity: "volume",
                unit: "m3",
                exp: -3
            }
        );
        assert_eq!(
            meaning(Table::Primary, 0x14),
            Meaning::Scaled {
                quantity: "volume",
                unit: "m3",
                exp: -2
            }
        );
        assert_eq!(
            meaning(Table::Primary, 0x04),
            Meaning::Scaled {
                quantity: "energy",
                unit: "Wh",
                exp: 1
            }
        );
        assert_eq!(
            meaning(Table::Primary, 0x06),
            Meaning::Scaled {
                quantity: "energy",
                unit: "kWh",
                exp: 0
            }
        );
        assert_eq!(
            meaning(Table::Primary, 0x3B),
            Meaning::Scaled {
                quantity: "volume_flow",
                unit: "m3/h",
                exp: -3
            }
        );
        assert_eq!(
            meaning(Table::Primary, 0x5A),
            Meaning::Scaled {
                quantity: "flow_temperature",
                unit: "°C",
                exp: -1
            }
        );
        assert_eq!(
            meaning(Table::Fd, 0x17),
            Meaning::Count {
                quantity: "error_flags"
            }
        );
        assert_eq!(meaning(Table::Primary, 0x6F), Meaning::Unknown);
    }

    #[test]
    fn combinable_vifes_qualify() {
        assert_eq!(modifiers(&[0x3C]).suffix, "_backward");
        assert_eq!(modifiers(&[0xFE, 0x22]).suffix, "_future");
        assert_eq!(modifiers(&[0xFE, 0x22]).per, Some("/h"));
        assert_eq!(modifiers(&[0x73]).exp, -3);
        assert_eq!(modifiers(&[0xFF, 0x12]).suffix, "_mfct");
    }
}
