//! R900's Reed-Solomon code: a shortened RS(31,26) over GF(32), written from the published
//! parameters (rtlamr's `r900/r900.go` and `r900/gf/gf.go` describe the check): field polynomial
//! x^5+x^2+1 (37), α = 2, five parity symbols whose roots are α^29..α^33. The 31-symbol codeword is
//! the 16 data symbols, ten zero symbols (the shortening) and the 5 parity symbols, highest power
//! first.

/// Number of symbols the radio sends: 16 data + 5 parity.
pub const SYMBOLS: usize = 21;
/// Data symbols (80 bits).
pub const DATA: usize = 16;
/// Parity symbols.
pub const PARITY: usize = 5;
const FIELD_POLY: u16 = 0b10_0101;
const FIRST_ROOT: usize = 29;

struct Tables {
    exp: [u8; 62],
    log: [u8; 32],
}

const TABLES: Tables = {
    let mut exp = [0u8; 62];
    let mut log = [0u8; 32];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 31 {
        exp[i] = x as u8;
        exp[i + 31] = x as u8;
        log[x as usize] = i as u8;
        x <<= 1;
        if x & 0x20 != 0 {
            x ^= FIELD_POLY;
        }
        i += 1;
    }
    Tables { exp, log }
};

fn mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        0
    } else {
        TABLES.exp[TABLES.log[a as usize] as usize + TABLES.log[b as usize] as usize]
    }
}

fn alpha_pow(n: usize) -> u8 {
    TABLES.exp[n % 31]
}

/// `acc · α^log_b` for a non-zero multiplier given by its logarithm.
const fn mul_log(acc: u8, log_b: usize) -> u8 {
    if acc == 0 {
        0
    } else {
        TABLES.exp[TABLES.log[acc as usize & 31] as usize + log_b]
    }
}

/// Multiplication tables for the Horner steps: `STEP[i][x] = x · α^(29+i)` and
/// `SHORTEN[i][x] = x · α^(10·(29+i))` (the ten shortening zeros in one step), so each step of
/// the syndrome loop is one lookup.
struct Steps {
    step: [[u8; 32]; PARITY],
    shorten: [[u8; 32]; PARITY],
}

const STEPS: Steps = {
    let mut step = [[0u8; 32]; PARITY];
    let mut shorten = [[0u8; 32]; PARITY];
    let mut i = 0;
    while i < PARITY {
        let log_root = (FIRST_ROOT + i) % 31;
        let mut x = 0;
        while x < 32 {
            step[i][x] = mul_log(x as u8, log_root);
            shorten[i][x] = mul_log(x as u8, log_root * 10 % 31);
            x += 1;
        }
        i += 1;
    }
    Steps { step, shorten }
};

/// The five syndromes of 21 received symbols (each < 32). All zero means the frame is a codeword.
pub fn syndromes(symbols: &[u8; SYMBOLS]) -> [u8; PARITY] {
    let mut out = [0u8; PARITY];
    for (i, s) in out.iter_mut().enumerate() {
        let step = &STEPS.step[i];
        let mut acc = 0u8;
        for &sym in &symbols[..DATA] {
            acc = step[acc as usize & 31] ^ sym;
        }
        acc = STEPS.shorten[i][acc as usize & 31];
        for &sym in &symbols[DATA..] {
            acc = step[acc as usize & 31] ^ sym;
        }
        *s = acc;
    }
    out
}

/// Generator polynomial ∏ (x − α^(29+i)), highest power first (monic).
fn generator() -> [u8; PARITY + 1] {
    let mut g = [0u8; PARITY + 1];
    g[0] = 1;
    for i in 0..PARITY {
        let root = alpha_pow(FIRST_ROOT + i);
        // Multiply the degree-i polynomial g[0..=i] by (x + root).
        for k in (1..=i + 1).rev() {
            g[k] ^= mul(g[k - 1], root);
        }
    }
    g
}

/// The parity symbols a meter appends to 16 data symbols (systematic encoding).
pub fn parity(data: &[u8; DATA]) -> [u8; PARITY] {
    let g = generator();
    let mut rem = [0u8; PARITY];
    let zeros = [0u8; 10];
    for &sym in data.iter().chain(zeros.iter()) {
        let feedback = sym ^ rem[0];
        for k in 0..PARITY - 1 {
            rem[k] = rem[k + 1] ^ mul(feedback, g[k + 1]);
        }
        rem[PARITY - 1] = mul(feedback, g[PARITY]);
    }
    rem
}

#[cfg(test)]
mod tests {
    use super::*;

    const R1: [u8; 21] = [
        11, 16, 18, 11, 22, 17, 21, 3, 16, 16, 3, 2, 27, 30, 16, 0, 6, 22, 28, 22, 29,
    ];
    const R5D: [u8; 21] = [11, 2, 3, 5, 21, 0, 13, 1, 0, 0, 0, 22, 0, 0, 1, 31, 9, 4, 6, 8, 29];

    #[test]
    fn field_tables_are_a_permutation() {
        let mut seen = [false; 32];
        for i in 0..31 {
            let v = alpha_pow(i);
            assert!(v != 0 && !seen[v as usize]);
            seen[v as usize] = true;
        }
        assert_eq!(mul(alpha_pow(30), 2), 1, "α^31 = 1");
    }

    #[test]
    fn published_vectors_are_codewords() {
        assert_eq!(syndromes(&R1), [0; 5]);
        assert_eq!(syndromes(&R5D), [0; 5]);
    }

    #[test]
    fn corrupted_symbol_gives_the_published_syndromes() {
        let mut n5 = R1;
        n5[5] ^= 1;
        assert_eq!(syndromes(&n5), [14, 10, 1, 25, 6]);
    }

    #[test]
    fn encoder_reproduces_captured_parity() {
        let data: [u8; 16] = R1[..16].try_into().unwrap();
        assert_eq!(parity(&data), [6, 22, 28, 22, 29]);
        let data: [u8; 16] = R5D[..16].try_into().unwrap();
        assert_eq!(parity(&data), [9, 4, 6, 8, 29]);
    }

    #[test]
    fn every_single_symbol_error_is_detected() {
        for pos in 0..SYMBOLS {
            for flip in 1..32u8 {
                let mut s = R1;
                s[pos] ^= flip;
                assert_ne!(syndromes(&s), [0; 5], "pos {pos} flip {flip}");
            }
        }
    }
}
