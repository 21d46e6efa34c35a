//! One ES256 key: parsed from a `token_keys` entry's PKCS#8 PEM, or
//! derived from `signing_key` for stacks that CloudFormation created, with
//! its public coordinates for the JWK Set.

use aws_lc_rs::{
    agreement::{ECDH_P256, PrivateKey},
    signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair},
};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, KeyInit, Mac};
use sha2::{Digest, Sha256};

use super::signing::TokenKeyEntry;

/// An ES256 key pair ready to sign, with its public coordinates.
pub(super) struct Es256Key {
    pub kid: String,
    pub pair: EcdsaKeyPair,
    pub x: String,
    pub y: String,
}

/// Domain separation: this derivation yields nothing usable as any other
/// key made from `signing_key` (the code key, the seal key).
const DERIVE_LABEL: &[u8] = b"otp-service/token-key/es256/v1";
/// The order of P-256, big-endian: a scalar must be in 1..N.
const P256_ORDER: [u8; 32] = [
    0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
    0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51,
];
const MAX_KID_LEN: usize = 64;

impl Es256Key {
    pub fn from_entry(index: usize, entry: &TokenKeyEntry) -> Result<Self, String> {
        let kid = &entry.kid;
        let kid_ok = !kid.is_empty()
            && kid.len() <= MAX_KID_LEN
            && kid
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:~".contains(&b));
        if !kid_ok {
            return Err(format!(
                "token_keys[{index}].kid must be 1 to {MAX_KID_LEN} letters, digits or -_.:~"
            ));
        }
        let bad = |what: &str| format!("token_keys[{index}] (kid {kid:?}): {what}");
        let pem = pem::parse(entry.private_key.trim())
            .map_err(|_| bad("private_key is not a PEM block"))?;
        if pem.tag() != "PRIVATE KEY" {
            return Err(bad(
                "private_key must be a PKCS#8 \"PRIVATE KEY\" PEM (openssl genpkey makes one)",
            ));
        }
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pem.contents())
            .map_err(|_| bad("private_key is not a P-256 (prime256v1) key"))?;
        let (x, y) = coordinates(pair.public_key().as_ref()).ok_or_else(|| bad("bad point"))?;
        Ok(Self {
            kid: kid.clone(),
            pair,
            x,
            y,
        })
    }

    /// The same seed always gives the same key, so every instance of every
    /// function agrees on it without storing it; its kid is the RFC 7638
    /// thumbprint of its public key.
    pub fn derive(seed: &[u8]) -> Result<Self, String> {
        let failed = || "could not derive a P-256 key from signing_key".to_owned();
        // A candidate is out of range with probability about 2^-32; the
        // counter moves on to the next one.
        let (scalar, point) = (0..=u8::MAX)
            .find_map(|counter| {
                let mut mac = Hmac::<Sha256>::new_from_slice(seed).ok()?;
                mac.update(DERIVE_LABEL);
                mac.update(&[counter]);
                let scalar: [u8; 32] = mac.finalize().into_bytes().into();
                let in_range = scalar != [0; 32] && scalar < P256_ORDER;
                let private = in_range
                    .then(|| PrivateKey::from_private_key(&ECDH_P256, &scalar).ok())
                    .flatten()?;
                let point = private.compute_public_key().ok()?.as_ref().to_vec();
                Some((scalar, point))
            })
            .ok_or_else(failed)?;
        let pair = EcdsaKeyPair::from_private_key_and_public_key(
            &ECDSA_P256_SHA256_FIXED_SIGNING,
            &scalar,
            &point,
        )
        .map_err(|_| failed())?;
        let (x, y) = coordinates(&point).ok_or_else(failed)?;
        Ok(Self {
            kid: thumbprint(&x, &y),
            pair,
            x,
            y,
        })
    }
}

/// base64url x and y of an uncompressed SEC1 point (`04 || x || y`).
fn coordinates(point: &[u8]) -> Option<(String, String)> {
    match point {
        [4, rest @ ..] if rest.len() == 64 => {
            let (x, y) = rest.split_at(32);
            Some((URL_SAFE_NO_PAD.encode(x), URL_SAFE_NO_PAD.encode(y)))
        }
        _ => None,
    }
}

/// RFC 7638: SHA-256 over the required members in lexicographic order.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}
