//! Quantities as ESPI integers.
//!
//! ESPI writes a reading's `value` as an integer (`Int48`) in the unit `uom × 10^m`, where `m`
//! is the `ReadingType`'s `powerOfTenMultiplier`. meterd's quantities are micro-units of a
//! unit `10^e × uom` (kWh is `e = 3` of Wh), so the integer is
//! `micros × 10^(e − 6 − m)`, exact only when that division leaves no remainder.
//!
//! [`choose_multiplier`] picks, for a channel, the largest `m` of `0, −1, −2, −3, −6` (the
//! schema's `UnitMultiplierKind` values at or below none) that keeps every value exact and
//! inside `Int48`: whole watt-hours give `0`, a value of 0.5 Wh gives `−1`. Multipliers above
//! `0` (kWh written as `k` of Wh) are never chosen, since consumers most often read `uom`
//! values directly; a caller wanting one names it.

/// `UnitMultiplierKind` values of the schema.
pub const MULTIPLIERS: [i8; 13] = [-12, -9, -6, -3, -2, -1, 0, 1, 2, 3, 6, 9, 12];

/// Multipliers [`choose_multiplier`] tries, largest first.
const CANDIDATES: [i8; 5] = [0, -1, -2, -3, -6];

/// Largest magnitude of an `Int48`.
pub const INT48_MAX: i64 = (1 << 47) - 1;

/// `micros` (micro-units of `10^unit_exponent × uom`) as the integer of multiplier
/// `multiplier`, or `None` when not exact or outside `Int48`.
pub fn to_espi_value(micros: i64, unit_exponent: i8, multiplier: i8) -> Option<i64> {
    let shift = i32::from(unit_exponent) - 6 - i32::from(multiplier);
    let v = if shift >= 0 {
        micros.checked_mul(10i64.checked_pow(shift.unsigned_abs())?)?
    } else {
        let d = 10i64.checked_pow(shift.unsigned_abs())?;
        if micros % d != 0 {
            return None;
        }
        micros / d
    };
    (-INT48_MAX..=INT48_MAX).contains(&v).then_some(v)
}

/// The largest multiplier of `0, −1, −2, −3, −6` writing every value exactly; `None` when
/// none does (a value too large for `Int48`, or finer than the smallest multiplier allows).
pub fn choose_multiplier(unit_exponent: i8, values: impl Iterator<Item = i64> + Clone) -> Option<i8> {
    CANDIDATES
        .into_iter()
        .find(|&m| values.clone().all(|v| to_espi_value(v, unit_exponent, m).is_some()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kwh_as_whole_watt_hours() {
        assert_eq!(to_espi_value(1_234_000, 3, 0), Some(1234));
        assert_eq!(choose_multiplier(3, [1_234_000i64, 0, 5_000_000].into_iter()), Some(0));
        assert_eq!(choose_multiplier(3, [1_234_500i64].into_iter()), Some(-1));
        assert_eq!(choose_multiplier(3, [1i64].into_iter()), Some(-3));
        assert_eq!(to_espi_value(1, 3, -3), Some(1));
    }

    #[test]
    fn cubic_metres_as_litres_or_finer() {
        assert_eq!(choose_multiplier(0, [123_000i64].into_iter()), Some(-3));
        assert_eq!(choose_multiplier(0, [1i64].into_iter()), Some(-6));
        assert_eq!(choose_multiplier(0, [2_000_000i64].into_iter()), Some(0));
    }

    #[test]
    fn refuses_what_does_not_fit() {
        assert_eq!(to_espi_value(1, 0, 0), None);
        assert_eq!(to_espi_value(i64::MAX, 3, 0), None);
        assert_eq!(choose_multiplier(0, [i64::MAX].into_iter()), None);
        assert_eq!(choose_multiplier(-7, [1i64].into_iter()), None);
        assert_eq!(to_espi_value(5, 100, 0), None);
    }
}
