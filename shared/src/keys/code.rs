//! The keys that protect codes at rest: the HMAC key of the stored digest
//! and the AES key of a call's sealed code, both derived from one piece of
//! material. The secret's `code_keys` lists that material, newest first
//! (without it, `signing_key` is the only one, as before): the first key
//! stores, and every key is tried when a code comes back, so a rotation
//! breaks no code in flight.

use crate::domain::{CodeDigest, CodeKey, OtpCode, PhoneNumber, SealKey, SealedCode, SendId};

pub struct CodeKeys {
    /// Never empty: `new` refuses an empty list.
    keys: Vec<(CodeKey, SealKey)>,
}

impl CodeKeys {
    /// `materials`, newest first; `None` if there is none.
    pub fn new<'a>(materials: impl IntoIterator<Item = &'a [u8]>) -> Option<Self> {
        let keys: Vec<_> = materials
            .into_iter()
            .map(|m| (CodeKey::derive(m), SealKey::derive(m)))
            .collect();
        (!keys.is_empty()).then_some(Self { keys })
    }

    fn newest(&self) -> &(CodeKey, SealKey) {
        // `new` guarantees one key at least.
        &self.keys[0]
    }

    /// The digest to store for a new code.
    pub fn digest(&self, phone: &PhoneNumber, code: &OtpCode) -> CodeDigest {
        self.newest().0.digest(phone, code)
    }

    /// The digest of a guess under every key: it is right if any matches.
    pub fn candidates(&self, phone: &PhoneNumber, code: &OtpCode) -> Vec<CodeDigest> {
        self.keys
            .iter()
            .map(|(k, _)| k.digest(phone, code))
            .collect()
    }

    /// A keyed tag of `data`, under the newest key (see `CodeKey::label`).
    pub fn label(&self, purpose: &str, data: &str) -> String {
        self.newest().0.label(purpose, data)
    }

    pub fn seal(
        &self,
        code: &OtpCode,
        phone: &PhoneNumber,
        send: &SendId,
        expires_ms: u64,
    ) -> SealedCode {
        self.newest().1.seal(code, phone, send, expires_ms)
    }

    /// Opens a seal made under any of the keys (AES-GCM refuses the others).
    pub fn open(
        &self,
        sealed: &SealedCode,
        phone: &PhoneNumber,
        send: &SendId,
        expires_ms: u64,
        now_ms: u64,
    ) -> Option<OtpCode> {
        self.keys
            .iter()
            .find_map(|(_, seal)| seal.open(sealed, phone, send, expires_ms, now_ms))
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::CodeLength;

    const OLD: &[u8] = b"the old code key material, 32 bytes+";
    const NEW: &[u8] = b"the new code key material, 32 bytes+";

    fn fixture() -> (PhoneNumber, OtpCode, SendId) {
        (
            PhoneNumber::parse("+14155552671").unwrap(),
            OtpCode::parse("123456", CodeLength::default()).unwrap(),
            SendId::generate(),
        )
    }

    #[test]
    fn a_code_stored_under_the_old_key_matches_after_a_new_key_is_put_first() {
        let (phone, code, _) = fixture();
        let before = CodeKeys::new([OLD]).unwrap();
        let after = CodeKeys::new([NEW, OLD]).unwrap();
        let stored = before.digest(&phone, &code);
        assert!(after.candidates(&phone, &code).contains(&stored));
        assert_ne!(
            after.digest(&phone, &code),
            stored,
            "new codes use the new key"
        );
        let removed = CodeKeys::new([NEW]).unwrap();
        assert!(!removed.candidates(&phone, &code).contains(&stored));
    }

    #[test]
    fn a_call_sealed_under_the_old_key_opens_after_the_rotation() {
        let (phone, code, send) = fixture();
        let sealed = CodeKeys::new([OLD]).unwrap().seal(&code, &phone, &send, 10);
        let after = CodeKeys::new([NEW, OLD]).unwrap();
        assert_eq!(after.open(&sealed, &phone, &send, 10, 0), Some(code));
        let removed = CodeKeys::new([NEW]).unwrap();
        assert_eq!(removed.open(&sealed, &phone, &send, 10, 0), None);
    }

    #[test]
    fn an_empty_list_is_not_a_set_of_keys() {
        assert!(CodeKeys::new(std::iter::empty::<&[u8]>()).is_none());
    }
}
