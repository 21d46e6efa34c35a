//! Domain types. Each one is parsed once at the edge and cannot hold an
//! invalid value afterwards, so nothing past the edge re-checks it.

mod client;
mod code;
mod phone;

pub use client::{ClientIp, IdempotencyKey};
pub use code::{CodeDigest, CodeKey, CodeLength, OtpCode, OtpCodeError};
pub use phone::{PhoneNumber, PhoneNumberError};
