//! `PhoneNumber`: a valid E.164 number, with what the rules need to know
//! about it (its country, its line type by the numbering plan).

use std::fmt;

use rlibphonenumber::{
    PHONE_NUMBER_UTIL, PhoneNumber as Parsed, PhoneNumberFormat, PhoneNumberType,
};

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
/// Country calling codes have one to three digits.
const MAX_COUNTRY_CODE_DIGITS: usize = 3;

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
        let (parsed, libphonenumber_type) =
            classify(digits, &compact).ok_or(PhoneNumberError::Invalid)?;
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

/// The number and its type by the numbering plan, or `None` when it is not
/// valid. libphonenumber's `is_valid` is exactly "the type is known": it
/// finds the region and matches the number against its patterns, as
/// `get_type` does again, so the type is asked for once.
///
/// The digits are first read as E.164 says they are written: a country
/// code, then the national number. libphonenumber's general parser, made
/// for whatever a person might type and the costliest step of a warm
/// request (its regular expressions, some 10 µs a number), runs only for
/// digits that are not a valid number that way: it also understands, say,
/// a national prefix kept after the country code (`+44 07400 123456`). The
/// two differ only where digits valid as written also begin with a national
/// prefix that the general parser strips (Belarus's `8` before `10`): E.164
/// holds no national prefix, so the digits are taken as the number they
/// write. The test `a_number_is_read_as_libphonenumber_reads_it` compares
/// the two over every region's example numbers and their neighbours.
fn classify(digits: &str, compact: &str) -> Option<(Parsed, PhoneNumberType)> {
    if let Some(number) = as_written(digits) {
        let kind = number.get_type();
        if kind != PhoneNumberType::Unknown {
            return Some((number, kind));
        }
    }
    let number = Parsed::parse(compact, None).ok()?;
    let kind = number.get_type();
    (kind != PhoneNumberType::Unknown).then_some((number, kind))
}

/// E.164 digits split as libphonenumber's parser splits a number given in
/// international form when it strips nothing: the shortest known country
/// code (no code is a prefix of another; none starts with 0), the rest as
/// the national number, with its leading zeros recorded as that parser
/// records them (a number of only zeros keeps its last one as the number).
fn as_written(digits: &str) -> Option<Parsed> {
    if digits.starts_with('0') {
        return None;
    }
    let (country_code, national) = (1..=MAX_COUNTRY_CODE_DIGITS).find_map(|len| {
        let code = digits.get(..len)?.parse().ok()?;
        PHONE_NUMBER_UTIL
            .get_region_for_country_code(code)
            .map(|_| (code, &digits[len..]))
    })?;
    let mut number = Parsed {
        country_code,
        national_number: national.parse().ok()?,
        ..Parsed::default()
    };
    let zeros = national.bytes().take_while(|&b| b == b'0').count();
    if zeros > 0 && national.len() > 1 {
        number.italian_leading_zero = Some(true);
        let zeros = zeros.min(national.len() - 1);
        if zeros > 1 {
            number.number_of_leading_zeros = Some(i32::try_from(zeros).ok()?);
        }
    }
    Some(number)
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
mod tests;
