//! `PhoneNumber`: a valid E.164 number, with what the rules need to know
//! about it (its country, its line type by the numbering plan).

use std::fmt;

use rlibphonenumber::{PhoneNumber as Parsed, PhoneNumberFormat, PhoneNumberType};

/// A phone number that libphonenumber's metadata accepts as valid, held in
/// E.164 form (`+14155552671`).
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneNumber {
    e164: String,
    country: Option<String>,
    /// The national significant number: E.164 without `+` and country code.
    national: String,
    kind: NumberType,
}

/// libphonenumber's number types, by the numbering plan alone (a ported
/// number keeps the type of its range).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NumberType {
    FixedLine,
    Mobile,
    FixedLineOrMobile,
    TollFree,
    PremiumRate,
    SharedCost,
    Voip,
    PersonalNumber,
    Pager,
    Uan,
    Voicemail,
    Unknown,
}

impl NumberType {
    pub const ALL: [Self; 12] = [
        Self::FixedLine,
        Self::Mobile,
        Self::FixedLineOrMobile,
        Self::TollFree,
        Self::PremiumRate,
        Self::SharedCost,
        Self::Voip,
        Self::PersonalNumber,
        Self::Pager,
        Self::Uan,
        Self::Voicemail,
        Self::Unknown,
    ];

    /// libphonenumber's name, in snake case (`fixed_line_or_mobile`).
    pub fn name(self) -> &'static str {
        match self {
            Self::FixedLine => "fixed_line",
            Self::Mobile => "mobile",
            Self::FixedLineOrMobile => "fixed_line_or_mobile",
            Self::TollFree => "toll_free",
            Self::PremiumRate => "premium_rate",
            Self::SharedCost => "shared_cost",
            Self::Voip => "voip",
            Self::PersonalNumber => "personal_number",
            Self::Pager => "pager",
            Self::Uan => "uan",
            Self::Voicemail => "voicemail",
            Self::Unknown => "unknown",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    fn of(parsed: PhoneNumberType) -> Self {
        match parsed {
            PhoneNumberType::FixedLine => Self::FixedLine,
            PhoneNumberType::Mobile => Self::Mobile,
            PhoneNumberType::FixedLineOrMobile => Self::FixedLineOrMobile,
            PhoneNumberType::TollFree => Self::TollFree,
            PhoneNumberType::PremiumRate => Self::PremiumRate,
            PhoneNumberType::SharedCost => Self::SharedCost,
            PhoneNumberType::VoIP => Self::Voip,
            PhoneNumberType::PersonalNumber => Self::PersonalNumber,
            PhoneNumberType::Pager => Self::Pager,
            PhoneNumberType::UAN => Self::Uan,
            PhoneNumberType::VoiceMail => Self::Voicemail,
            PhoneNumberType::Unknown => Self::Unknown,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("the number does not start with '+' and a country code")]
    MissingPlus,
    #[error("the number holds characters other than digits")]
    NotDigits,
    #[error("the number has too few or too many digits for E.164")]
    Length,
    #[error("the number is not valid for its country")]
    Invalid,
}

/// E.164 allows at most 15 digits; the shortest valid numbers have 7.
const MIN_DIGITS: usize = 7;
const MAX_DIGITS: usize = 15;

impl PhoneNumber {
    /// Parses what a person might type: spaces, dashes and parentheses are
    /// dropped, a leading `+` is required, everything else must be ASCII digits.
    pub fn parse(input: &str) -> Result<Self, PhoneNumberError> {
        let compact: String = input
            .chars()
            .filter(|c| !matches!(c, ' ' | '-' | '(' | ')'))
            .collect();
        let digits = compact
            .strip_prefix('+')
            .ok_or(PhoneNumberError::MissingPlus)?;
        // Checked before libphonenumber sees it: that parser is lenient
        // (it accepts letters as keypad digits, full-width digits, "ext.").
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneNumberError::NotDigits);
        }
        if !(MIN_DIGITS..=MAX_DIGITS).contains(&digits.len()) {
            return Err(PhoneNumberError::Length);
        }
        let parsed = Parsed::parse(&compact, None).map_err(|_| PhoneNumberError::Invalid)?;
        // libphonenumber's `is_valid` is exactly "the type is known": it
        // finds the region and matches the number against its patterns,
        // as `get_type` does again. Asking once saves a third of the
        // pattern matching, the costliest step of a warm request.
        let libphonenumber_type = parsed.get_type();
        if libphonenumber_type == PhoneNumberType::Unknown {
            return Err(PhoneNumberError::Invalid);
        }
        let e164 = parsed.format_as(PhoneNumberFormat::E164).into_owned();
        let kind = NumberType::of(libphonenumber_type);
        let national = parsed.get_national_significant_number();
        // "001" and "ZZ" stand for numbers of no single region.
        let country = parsed
            .get_region_code()
            .map(|region| region.to_string())
            .filter(|code| code.len() == 2 && code != "ZZ");
        Ok(Self {
            e164,
            country,
            national,
            kind,
        })
    }

    /// Loads libphonenumber's metadata, which it otherwise decodes on first
    /// use: called during a cold start so no request pays for it. (Each
    /// region's patterns still compile on its first number, in microseconds
    /// with regex-lite.)
    pub fn warm_up() {
        let _ = Self::parse("+14155552671");
    }

    pub fn as_e164(&self) -> &str {
        &self.e164
    }

    /// ISO 3166 alpha-2 region (`US`), when the number maps to one region.
    pub fn country(&self) -> Option<&str> {
        self.country.as_deref()
    }

    /// The national significant number (`4155552671` for `+14155552671`):
    /// its leading digits name the range an operator was given.
    pub fn national_number(&self) -> &str {
        &self.national
    }

    /// Premium-rate and shared-cost numbers earn their owner money per SMS:
    /// the classic target of SMS pumping.
    pub fn is_premium_or_shared_cost(&self) -> bool {
        matches!(self.kind, NumberType::PremiumRate | NumberType::SharedCost)
    }

    pub fn kind(&self) -> NumberType {
        self.kind
    }

    /// Numbers of no single country: international freephone (+800),
    /// satellite (+881, +870), international networks (+882, +883).
    pub fn is_non_geographic(&self) -> bool {
        self.country.is_none()
    }

    /// The form safe for logs: `+1415*****71`.
    pub fn masked(&self) -> Masked<'_> {
        Masked(&self.e164)
    }
}

/// Keeps the number out of logs even when someone writes `{:?}`.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneNumber({})", self.masked())
    }
}

/// A phone number shown with all but the `+`, the first four and the last
/// two digits hidden.
pub struct Masked<'a>(&'a str);

impl fmt::Display for Masked<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // E.164 is ASCII, so byte offsets are character offsets. Short
        // numbers (7 to 9 digits) show less, so most digits stay hidden.
        let s = self.0;
        let digits = s.len().saturating_sub(1);
        let (head, tail) = if digits >= 10 { (5, 2) } else { (3, 1) };
        let head = head.min(s.len());
        let tail = tail.min(s.len() - head);
        f.write_str(&s[..head])?;
        for _ in 0..s.len() - head - tail {
            f.write_str("*")?;
        }
        f.write_str(&s[s.len() - tail..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_number_is_accepted_exactly_when_libphonenumber_calls_it_valid() {
        // `parse` asks for the type instead of `is_valid`: the same answer,
        // checked over ranges of several countries, single- and
        // multi-region calling codes and non-geographic ones alike.
        let mut accepted = 0;
        for prefix in [
            "+1415555",
            "+1268464",
            "+44740012",
            "+4420794",
            "+4915",
            "+3361234",
            "+8008",
            "+8823",
            "+9715",
            "+23480",
        ] {
            for n in 0..400u32 {
                let number = format!("{prefix}{:04}", n * 25);
                let valid = Parsed::parse(&number, None).is_ok_and(|p| p.is_valid());
                assert_eq!(PhoneNumber::parse(&number).is_ok(), valid, "{number}");
                accepted += usize::from(valid);
            }
        }
        assert!(
            accepted > 1_000,
            "the ranges hold valid numbers too: {accepted}"
        );
    }

    #[test]
    fn parse_accepts_e164_with_spaces_dashes_and_parentheses() {
        let phone = PhoneNumber::parse("+1 (415) 555-2671").unwrap();
        assert_eq!(phone.as_e164(), "+14155552671");
        assert_eq!(phone.country(), Some("US"));
        assert_eq!(phone.national_number(), "4155552671");
        assert!(!phone.is_premium_or_shared_cost());
    }

    #[test]
    fn the_national_number_keeps_a_leading_zero_where_the_plan_has_one() {
        let italian = PhoneNumber::parse("+390612345678").unwrap();
        assert_eq!(italian.national_number(), "0612345678");
        let french = PhoneNumber::parse("+33612345678").unwrap();
        assert_eq!(french.national_number(), "612345678");
    }

    #[test]
    fn parse_rejects_a_number_without_a_leading_plus() {
        assert_eq!(
            PhoneNumber::parse("14155552671"),
            Err(PhoneNumberError::MissingPlus)
        );
    }

    #[test]
    fn parse_rejects_letters_unicode_digits_and_dots() {
        for input in [
            "+1415555267a",
            "+1415CALLNOW",
            "+１４１５５５５２６７１",
            "+١٤١٥٥٥٥٢٦٧١",
            "+1.415.555.2671",
            "+14155552671\0",
            "+14155552671 ext 5",
        ] {
            assert_eq!(
                PhoneNumber::parse(input),
                Err(PhoneNumberError::NotDigits),
                "{input:?}"
            );
        }
    }

    #[test]
    fn parse_rejects_too_short_too_long_and_impossible_numbers() {
        assert_eq!(PhoneNumber::parse("+"), Err(PhoneNumberError::Length));
        assert_eq!(
            PhoneNumber::parse("+1234567890123456"),
            Err(PhoneNumberError::Length)
        );
        assert_eq!(
            PhoneNumber::parse("+10005550100"),
            Err(PhoneNumberError::Invalid)
        );
    }

    #[test]
    fn parse_flags_premium_rate_and_shared_cost_numbers() {
        assert!(
            PhoneNumber::parse("+19005550123")
                .unwrap()
                .is_premium_or_shared_cost()
        );
        assert!(
            PhoneNumber::parse("+448431234567")
                .unwrap()
                .is_premium_or_shared_cost()
        );
        assert!(
            !PhoneNumber::parse("+447400123456")
                .unwrap()
                .is_premium_or_shared_cost()
        );
    }

    #[test]
    fn costly_number_ranges_get_their_libphonenumber_type() {
        for (number, kind, geographic) in [
            ("+14155552671", NumberType::FixedLineOrMobile, true),
            ("+447400123456", NumberType::Mobile, true),
            ("+447012345678", NumberType::PersonalNumber, true),
            ("+447640123456", NumberType::Pager, true),
            ("+445612345678", NumberType::Voip, true),
            ("+445512345678", NumberType::Uan, true),
            ("+80012345678", NumberType::TollFree, false),
        ] {
            let phone = PhoneNumber::parse(number).unwrap();
            assert_eq!(phone.kind(), kind, "{number}");
            assert_eq!(!phone.is_non_geographic(), geographic, "{number}");
        }
        for satellite in ["+8816212345678", "+870773111632", "+883510012345"] {
            let phone = PhoneNumber::parse(satellite).unwrap();
            assert!(phone.is_non_geographic(), "{satellite}: {:?}", phone.kind());
        }
    }

    #[test]
    fn number_types_parse_from_their_libphonenumber_names() {
        for kind in NumberType::ALL {
            assert_eq!(NumberType::parse(kind.name()), Some(kind));
        }
        assert_eq!(NumberType::parse("MOBILE"), None);
    }

    #[test]
    fn masked_keeps_the_country_prefix_and_the_last_two_digits() {
        let phone = PhoneNumber::parse("+14155552671").unwrap();
        assert_eq!(phone.masked().to_string(), "+1415*****71");
        assert_eq!(format!("{phone:?}"), "PhoneNumber(+1415*****71)");
        let short = PhoneNumber::parse("+6837001").unwrap();
        assert_eq!(short.masked().to_string(), "+68****1");
    }
}
