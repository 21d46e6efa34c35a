//! Domain types. Each one is parsed once at the edge and cannot hold an
//! invalid value afterwards, so nothing past the edge re-checks it.

mod client;
mod code;
mod delivery;
mod destination;
mod line;
mod phone;
mod sealed;
mod tag;

pub use client::{CaptchaToken, ClientIp, IdempotencyKey};
pub use code::{CodeDigest, CodeKey, CodeLength, OtpCode, OtpCodeError};
pub use delivery::{ANSWER_PATH, CallbackBase, Channel, HANGUP_PATH, STATUS_PATH, SendId};
pub use destination::Destination;
pub use line::LineType;
pub use phone::{NumberType, PhoneNumber, PhoneNumberError};
pub use sealed::{SealKey, SealedCode};
pub use tag::{PhoneTag, PhoneTagKey};
