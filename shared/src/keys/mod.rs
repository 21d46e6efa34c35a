//! The key material the secret yields, kept apart by use: the keys that
//! sign verification tokens (`signing`: ES256 key pairs with ids, published
//! as a JWK Set, or the HS256 shared key) and the keys that hash and seal
//! codes (`code`). A backend that verifies tokens holds at most a public
//! key, from which no code key can be derived.

mod code;
mod es256;
mod signing;

pub use code::CodeKeys;
pub use signing::{
    DerivedKeyPosition, Es256Signer, JwsError, SigningKey, TokenAlgorithm, TokenKeyEntry, TokenKeys,
};
