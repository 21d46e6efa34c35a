//! The code a voice call must speak, kept between the request and Plivo's
//! answer callback. It is sealed with AES-256-GCM under a key derived from
//! the service's secret, and the seal is bound to the phone, the send and
//! the expiry: a copy of Redis reveals no code, and a sealed code moved to
//! another phone, send or time does not open.

use std::fmt;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use base64::{Engine, engine::general_purpose::STANDARD_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::{OtpCode, PhoneNumber, SendId};

/// The AES-256-GCM key for sealed codes.
pub struct SealKey(LessSafeKey);

/// A sealed code as the store keeps it: base64 of nonce and ciphertext.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedCode(String);

impl SealKey {
    /// Derived with its own label, so it shares nothing usable with the
    /// digest key or the token key.
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
        mac.update(b"otp-service/voice-seal/v1");
        let bytes: [u8; 32] = mac.finalize().into_bytes().into();
        let key = UnboundKey::new(&AES_256_GCM, &bytes).expect("32 bytes is an AES-256 key");
        Self(LessSafeKey::new(key))
    }

    pub fn seal(
        &self,
        code: &OtpCode,
        phone: &PhoneNumber,
        send: &SendId,
        expires_ms: u64,
    ) -> SealedCode {
        // A random 96-bit nonce per seal: fine for far fewer than 2^32 seals
        // under one key, and every code has a fresh one.
        let nonce_bytes: [u8; NONCE_LEN] = rand::random();
        let mut buffer = code.expose().as_bytes().to_vec();
        self.0
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(context(phone, send, expires_ms)),
                &mut buffer,
            )
            .expect("AES-GCM seals any input shorter than 64 GiB");
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&buffer);
        SealedCode(STANDARD_NO_PAD.encode(out))
    }

    /// The code, if `sealed` was made by this key for this phone, send and
    /// expiry, and the expiry has not passed.
    pub fn open(
        &self,
        sealed: &SealedCode,
        phone: &PhoneNumber,
        send: &SendId,
        expires_ms: u64,
        now_ms: u64,
    ) -> Option<OtpCode> {
        if now_ms >= expires_ms {
            return None;
        }
        let raw = STANDARD_NO_PAD.decode(&sealed.0).ok()?;
        if raw.len() <= NONCE_LEN {
            return None;
        }
        let (nonce, ciphertext) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut buffer = ciphertext.to_vec();
        let plain = self
            .0
            .open_in_place(
                nonce,
                Aad::from(context(phone, send, expires_ms)),
                &mut buffer,
            )
            .ok()?;
        let digits = std::str::from_utf8(plain).ok()?;
        OtpCode::from_sealed(digits)
    }
}

fn context(phone: &PhoneNumber, send: &SendId, expires_ms: u64) -> Vec<u8> {
    format!("{}\0{}\0{expires_ms}", phone.as_e164(), send.as_str()).into_bytes()
}

impl SealedCode {
    pub fn from_stored(value: String) -> Self {
        Self(value)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealKey(<redacted>)")
    }
}

impl fmt::Debug for SealedCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SealedCode(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CodeLength;

    fn fixture() -> (SealKey, OtpCode, PhoneNumber, SendId) {
        (
            SealKey::derive(b"a secret of the service, 32 bytes at least"),
            OtpCode::parse("123456", CodeLength::default()).unwrap(),
            PhoneNumber::parse("+14155552671").unwrap(),
            SendId::generate(),
        )
    }

    #[test]
    fn a_sealed_code_opens_for_its_phone_send_and_time_only() {
        let (key, code, phone, send) = fixture();
        let sealed = key.seal(&code, &phone, &send, 10_000);
        assert!(!sealed.as_str().contains("123456"));
        assert_eq!(key.open(&sealed, &phone, &send, 10_000, 9_999), Some(code));
        assert_eq!(key.open(&sealed, &phone, &send, 10_000, 10_000), None);
        assert_eq!(key.open(&sealed, &phone, &send, 20_000, 9_999), None);
        let other = PhoneNumber::parse("+14155552672").unwrap();
        assert_eq!(key.open(&sealed, &other, &send, 10_000, 9_999), None);
        assert_eq!(
            key.open(&sealed, &phone, &SendId::generate(), 10_000, 9_999),
            None
        );
        let stranger = SealKey::derive(b"another secret of at least 32 bytes....");
        assert_eq!(stranger.open(&sealed, &phone, &send, 10_000, 9_999), None);
    }

    #[test]
    fn two_seals_of_one_code_differ() {
        let (key, code, phone, send) = fixture();
        assert_ne!(
            key.seal(&code, &phone, &send, 1).as_str(),
            key.seal(&code, &phone, &send, 1).as_str()
        );
    }
}
