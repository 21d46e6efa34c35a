//! What Redis names a phone by: a keyed hash of the number, so that a dump
//! of the cache (or its key names alone) lists no phone number.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::PhoneNumber;

/// The key of the tags. It must never rotate with the other keys: a new
/// one would rename every phone's keys and forget its limits and codes.
#[derive(Clone)]
pub struct PhoneTagKey([u8; 32]);

/// 128 bits of HMAC-SHA256 in hex: collisions are out of reach, and the
/// key name stays short.
#[derive(Clone, PartialEq, Eq)]
pub struct PhoneTag(String);

impl PhoneTagKey {
    pub fn derive(secret: &[u8]) -> Self {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
        mac.update(b"otp-service/phone-tag/v1");
        Self(mac.finalize().into_bytes().into())
    }

    pub fn tag(&self, phone: &PhoneNumber) -> PhoneTag {
        let mut mac =
            Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts keys of any length");
        mac.update(phone.as_e164().as_bytes());
        let digest = mac.finalize().into_bytes();
        PhoneTag(hex::encode(&digest[..16]))
    }
}

impl PhoneTag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PhoneTagKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PhoneTagKey(<redacted>)")
    }
}

impl fmt::Debug for PhoneTag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhoneTag({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tag_is_stable_per_key_and_hides_the_number() {
        let key = PhoneTagKey::derive(b"a secret of the service, 32 bytes at least");
        let phone = PhoneNumber::parse("+14155552671").unwrap();
        let tag = key.tag(&phone);
        assert_eq!(
            tag,
            key.tag(&PhoneNumber::parse("+1 415 555 2671").unwrap())
        );
        assert_eq!(tag.as_str().len(), 32);
        assert!(!tag.as_str().contains("4155552671"));
        let other = PhoneTagKey::derive(b"another secret of the service, 32 bytes");
        assert_ne!(tag, other.tag(&phone));
        assert_ne!(tag, key.tag(&PhoneNumber::parse("+14155552672").unwrap()));
    }
}
