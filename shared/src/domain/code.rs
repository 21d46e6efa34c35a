//! One-time codes: how long they are, how they are drawn, and the keyed
//! digest that is all the store ever sees of them.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use rand::RngExt;
use sha2::Sha256;

use super::PhoneNumber;

/// The configured number of digits in a code, 6 to 10.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodeLength(usize);

impl CodeLength {
    pub const MIN: usize = 6;
    pub const MAX: usize = 10;

    pub fn new(digits: usize) -> Option<Self> {
        (Self::MIN..=Self::MAX)
            .contains(&digits)
            .then_some(Self(digits))
    }

    pub fn get(self) -> usize {
        self.0
    }
}

impl Default for CodeLength {
    fn default() -> Self {
        Self(6)
    }
}

/// Exactly `CodeLength` ASCII digits. It has no `Display`, and its `Debug`
/// is redacted, so it cannot reach a log by accident.
#[derive(Clone, PartialEq, Eq)]
pub struct OtpCode(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the code must be exactly {expected} ASCII digits")]
pub struct OtpCodeError {
    pub expected: usize,
}

impl OtpCode {
    /// No trimming and no Unicode digits: what was sent must be the code.
    pub fn parse(input: &str, length: CodeLength) -> Result<Self, OtpCodeError> {
        if input.len() == length.get() && input.bytes().all(|b| b.is_ascii_digit()) {
            Ok(Self(input.to_owned()))
        } else {
            Err(OtpCodeError {
                expected: length.get(),
            })
        }
    }

    /// Draws each digit uniformly from the thread's CSPRNG (ChaCha seeded by
    /// the OS); `random_range` rejects samples rather than taking a modulo,
    /// so no digit is likelier than another.
    pub fn generate(length: CodeLength) -> Self {
        let mut rng = rand::rng();
        let code = (0..length.get())
            .map(|_| char::from(b'0' + rng.random_range(0..10u8)))
            .collect();
        Self(code)
    }

    /// A code opened from its seal: digits only, of a plausible length.
    pub(super) fn from_sealed(digits: &str) -> Option<Self> {
        let length = CodeLength::new(digits.len())?;
        Self::parse(digits, length).ok()
    }

    /// The digits, for the SMS text, the spoken call and the digest only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for OtpCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("OtpCode(<redacted>)")
    }
}

/// The HMAC-SHA256 key codes are hashed with, derived from the service's
/// signing key so one secret serves both without sharing a key between uses.
#[derive(Clone)]
pub struct CodeKey([u8; 32]);

impl CodeKey {
    pub fn derive(signing_key: &[u8]) -> Self {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(signing_key).expect("HMAC accepts keys of any length");
        mac.update(b"otp-service/code-digest/v1");
        Self(mac.finalize().into_bytes().into())
    }

    /// Binds the code to the phone so a digest stolen from one number's key
    /// says nothing about another's.
    pub fn digest(&self, phone: &PhoneNumber, code: &OtpCode) -> CodeDigest {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(phone.as_e164().as_bytes());
        mac.update(&[0]);
        mac.update(code.expose().as_bytes());
        CodeDigest(hex::encode(mac.finalize().into_bytes()))
    }
}

impl CodeKey {
    /// A keyed tag of `data` for `purpose`: lets the store recognise a value
    /// (such as a phone number) without holding it.
    pub fn label(&self, purpose: &str, data: &str) -> String {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(data.as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

impl fmt::Debug for CodeKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CodeKey(<redacted>)")
    }
}

/// What Redis stores in place of a code: hex HMAC-SHA256 of phone and code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeDigest(String);

impl CodeDigest {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn six() -> CodeLength {
        CodeLength::new(6).unwrap()
    }

    #[test]
    fn parse_accepts_exactly_the_configured_number_of_ascii_digits() {
        assert_eq!(OtpCode::parse("012345", six()).unwrap().expose(), "012345");
    }

    #[test]
    fn parse_rejects_unicode_digits_signs_spaces_and_wrong_lengths() {
        for input in [
            "١٢٣٤٥٦",
            "１２３４５６",
            "+12345",
            "-12345",
            " 123456 ",
            "123 456",
            "1234567",
            "12345",
            "",
            "12345\0",
            "12345a",
        ] {
            assert_eq!(
                OtpCode::parse(input, six()),
                Err(OtpCodeError { expected: 6 }),
                "{input:?}"
            );
        }
    }

    #[test]
    fn code_length_accepts_six_to_ten_digits_only() {
        assert!(CodeLength::new(5).is_none());
        assert!(CodeLength::new(6).is_some());
        assert!(CodeLength::new(10).is_some());
        assert!(CodeLength::new(11).is_none());
    }

    #[test]
    fn generate_draws_every_digit_evenly_at_every_position() {
        let length = CodeLength::new(8).unwrap();
        let codes = 50_000u32;
        let mut counts = [[0u32; 10]; 8];
        for _ in 0..codes {
            let code = OtpCode::generate(length);
            assert_eq!(code.expose().len(), 8);
            for (pos, b) in code.expose().bytes().enumerate() {
                counts[pos][usize::from(b - b'0')] += 1;
            }
        }
        // Every cell expects 5,000: a stuck or skewed position leaves this band.
        for row in counts {
            for n in row {
                assert!((4_500..=5_500).contains(&n), "{row:?}");
            }
        }
        // A byte taken modulo 10 makes 0..=5 come up 60.94% of the time
        // instead of 60%. Over 400,000 digits the fair share's standard
        // deviation is 0.077 points, so ±0.45 points never trips a fair
        // generator (5.8 sigma) and always catches the biased one.
        let low: u32 = counts.iter().flat_map(|row| &row[..6]).sum();
        let share = f64::from(low) / f64::from(codes * 8);
        assert!((share - 0.6).abs() < 0.0045, "share of digits 0-5: {share}");
    }

    #[test]
    fn debug_never_shows_the_code() {
        let code = OtpCode::parse("123456", six()).unwrap();
        assert_eq!(format!("{code:?}"), "OtpCode(<redacted>)");
    }

    #[test]
    fn digest_is_bound_to_the_phone_and_the_key() {
        let code = OtpCode::parse("123456", six()).unwrap();
        let a = PhoneNumber::parse("+14155552671").unwrap();
        let b = PhoneNumber::parse("+447400123456").unwrap();
        let key = CodeKey::derive(&[7; 32]);
        let other_key = CodeKey::derive(&[8; 32]);
        assert_eq!(key.digest(&a, &code), key.digest(&a, &code));
        assert_ne!(key.digest(&a, &code), key.digest(&b, &code));
        assert_ne!(key.digest(&a, &code), other_key.digest(&a, &code));
        assert!(!key.digest(&a, &code).as_str().contains("123456"));
    }
}
