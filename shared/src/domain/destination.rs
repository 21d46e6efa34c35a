//! `Destination`: what the pumping breaker counts by. SMS pumping rents
//! number ranges, not whole countries, so a destination is a country and
//! the leading digits of the national number: the range an operator was
//! given (an NPA-NXX exchange in North America).

use std::fmt;

use super::PhoneNumber;

/// Digits a destination always leaves out, so that one is never narrower
/// than 10,000 numbers: a French 9-digit number with 6 prefix digits would
/// otherwise name ranges of 1,000, and a pumping run would spread over
/// many of them without tripping any.
const MIN_DIGITS_LEFT: usize = 4;

/// A country and the first digits of the national number (`US:415555`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    country: String,
    prefix: String,
}

impl Destination {
    /// The destination of `phone` with up to `prefix_digits` leading digits;
    /// none for numbers of no country (which the breaker does not see: they
    /// are refused, or named on purpose).
    pub fn of(phone: &PhoneNumber, prefix_digits: usize) -> Option<Self> {
        let country = phone.country()?;
        let national = phone.national_number();
        let take = prefix_digits.min(national.len().saturating_sub(MIN_DIGITS_LEFT));
        Some(Self {
            country: country.to_owned(),
            prefix: national[..take].to_owned(),
        })
    }

    /// ISO 3166 alpha-2, for the per-country metric.
    pub fn country(&self) -> &str {
        &self.country
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

/// `US:415555`: a range of at least 10,000 numbers, safe to log and to name
/// a key by (it is no one's number).
impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.country, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn destination(number: &str, digits: usize) -> String {
        Destination::of(&PhoneNumber::parse(number).unwrap(), digits)
            .unwrap()
            .to_string()
    }

    #[test]
    fn a_north_american_destination_is_its_npa_nxx_exchange() {
        assert_eq!(destination("+14155552671", 6), "US:415555");
        assert_eq!(destination("+14155550000", 6), "US:415555");
        assert_ne!(destination("+14155562671", 6), "US:415555");
        assert_eq!(destination("+16135550123", 6), "CA:613555");
    }

    #[test]
    fn at_least_four_digits_are_always_left_out() {
        // 9 national digits: 5 taken, 4 left.
        assert_eq!(destination("+33612345678", 6), "FR:61234");
        assert_eq!(destination("+14155552671", 8), "US:415555");
        assert_eq!(destination("+447400123456", 1), "GB:7");
    }

    #[test]
    fn a_number_of_no_country_has_no_destination() {
        let satellite = PhoneNumber::parse("+8816212345678").unwrap();
        assert_eq!(Destination::of(&satellite, 6), None);
    }
}
