//! The NEM12 quality-method: a quality flag letter and, for substituted and estimated data, a
//! method number (`A`, `S14`, `E15`, `F17`, `N`, `V`; `interval-data.md` §4). The method
//! numbers (11 check … 75 unmetered) are AEMO's Metrology Procedure Part B; this module keeps
//! the number and leaves its meaning to the caller.

use std::fmt;

/// The quality flag letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Quality {
    /// `A`: actual data.
    Actual,
    /// `E`: forward estimate.
    Estimated,
    /// `F`: final substitute.
    Final,
    /// `N`: null data (no value available).
    Null,
    /// `S`: substitute.
    Substituted,
    /// `V`: variable; the day's `400` records give the quality of each run.
    Variable,
}

impl Quality {
    pub const ALL: [Quality; 6] = [
        Quality::Actual,
        Quality::Estimated,
        Quality::Final,
        Quality::Null,
        Quality::Substituted,
        Quality::Variable,
    ];

    pub fn code(self) -> char {
        match self {
            Quality::Actual => 'A',
            Quality::Estimated => 'E',
            Quality::Final => 'F',
            Quality::Null => 'N',
            Quality::Substituted => 'S',
            Quality::Variable => 'V',
        }
    }

    pub fn from_code(c: char) -> Option<Self> {
        Self::ALL.into_iter().find(|q| q.code() == c)
    }
}

/// Highest method number (two digits).
pub const MAX_METHOD: u8 = 99;

/// A quality flag with an optional method number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct QualityMethod {
    pub quality: Quality,
    /// 0..=99.
    pub method: Option<u8>,
}

impl QualityMethod {
    pub fn new(quality: Quality, method: Option<u8>) -> Self {
        QualityMethod { quality, method }
    }

    /// Parse `A`, `S14`, `E5`, ...: a flag letter then at most two digits.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut chars = text.chars();
        let letter = chars.next().ok_or_else(|| "empty".to_string())?;
        let quality = Quality::from_code(letter).ok_or_else(|| format!("{text:?}: unknown quality flag {letter:?}"))?;
        let digits = chars.as_str();
        let method = if digits.is_empty() {
            None
        } else {
            if digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return Err(format!("{text:?}: the method is not a number 0..={MAX_METHOD}"));
            }
            digits.parse::<u8>().ok()
        };
        Ok(QualityMethod { quality, method })
    }
}

impl fmt::Display for QualityMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.method {
            Some(m) => write!(f, "{}{m:02}", self.quality.code()),
            None => write!(f, "{}", self.quality.code()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_prints_the_usual_forms() {
        for text in ["A", "S14", "E15", "F17", "N", "V", "S01"] {
            assert_eq!(QualityMethod::parse(text).unwrap().to_string(), text);
        }
        assert_eq!(
            QualityMethod::parse("E5").unwrap(),
            QualityMethod::new(Quality::Estimated, Some(5))
        );
    }

    #[test]
    fn refuses_unknown_flags_and_methods() {
        assert!(QualityMethod::parse("X").unwrap_err().contains("unknown quality flag"));
        assert!(QualityMethod::parse("").is_err());
        assert!(QualityMethod::parse("S100").is_err());
        assert!(QualityMethod::parse("S1a").is_err());
        assert!(QualityMethod::parse("a").is_err());
    }
}
