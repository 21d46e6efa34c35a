//! `LineType`: what Plivo's Lookup API says a number is, by its carrier
//! (`carrier.type`), which a ported number does not fool the way the
//! numbering plan alone can be fooled.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LineType {
    Mobile,
    Fixed,
    Voip,
    TollFree,
    /// Plivo could not tell, or named a type this service does not know.
    Unknown,
}

impl LineType {
    /// The types `LOOKUP_BLOCKED_LINE_TYPES` may name (refusing mobiles
    /// would refuse everyone).
    pub const BLOCKABLE: [Self; 4] = [Self::Voip, Self::Fixed, Self::TollFree, Self::Unknown];

    /// Plivo's name of the type, as it appears in `carrier.type`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Mobile => "mobile",
            Self::Fixed => "fixed",
            Self::Voip => "voip",
            Self::TollFree => "toll-free",
            Self::Unknown => "unknown",
        }
    }

    /// One of the names `as_str` gives, and nothing else (configuration and
    /// the cache).
    pub fn parse(name: &str) -> Option<Self> {
        [
            Self::Mobile,
            Self::Fixed,
            Self::Voip,
            Self::TollFree,
            Self::Unknown,
        ]
        .into_iter()
        .find(|t| t.as_str() == name)
    }

    /// What Plivo answered, read leniently: a type it may add later is
    /// `Unknown`, which a deployment can choose to refuse.
    pub fn from_carrier(name: Option<&str>) -> Self {
        let name = name.unwrap_or_default().trim().to_ascii_lowercase();
        match name.as_str() {
            "toll_free" | "tollfree" => Self::TollFree,
            other => Self::parse(other).unwrap_or(Self::Unknown),
        }
    }
}

impl fmt::Display for LineType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn carrier_types_are_read_leniently_and_unknown_names_are_unknown() {
        assert_eq!(LineType::from_carrier(Some("mobile")), LineType::Mobile);
        assert_eq!(LineType::from_carrier(Some("VOIP")), LineType::Voip);
        assert_eq!(
            LineType::from_carrier(Some("toll-free")),
            LineType::TollFree
        );
        assert_eq!(
            LineType::from_carrier(Some("toll_free")),
            LineType::TollFree
        );
        assert_eq!(LineType::from_carrier(Some("pager")), LineType::Unknown);
        assert_eq!(LineType::from_carrier(None), LineType::Unknown);
    }

    #[test]
    fn each_type_parses_from_its_own_name_only() {
        for t in [
            LineType::Mobile,
            LineType::Fixed,
            LineType::Voip,
            LineType::TollFree,
            LineType::Unknown,
        ] {
            assert_eq!(LineType::parse(t.as_str()), Some(t));
        }
        assert_eq!(LineType::parse("landline"), None);
    }
}
