//! The line type Plivo's Lookup gave a number, cached under the phone's
//! hash tag (`{prefix}:{<phone tag>}:line`) so that a number is looked up
//! once per `LOOKUP_CACHE_SECONDS`. Only the type is kept, nothing else of
//! Plivo's answer.

use std::time::Duration;

use super::{Store, StoreError, millis};
use crate::domain::{LineType, PhoneTag};

impl Store {
    /// The cached type, if any (an unreadable value counts as none).
    pub async fn cached_line_type(&self, phone: &PhoneTag) -> Result<Option<LineType>, StoreError> {
        let cached: Option<String> = self
            .command(redis::cmd("GET").arg(self.key(phone, "line")))
            .await?;
        Ok(cached.as_deref().and_then(LineType::parse))
    }

    /// Caches a type on its own, for a number that will not get a send
    /// (a send caches it in the same script that records it).
    pub async fn cache_line_type(
        &self,
        phone: &PhoneTag,
        line: LineType,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        self.command::<()>(
            redis::cmd("SET")
                .arg(self.key(phone, "line"))
                .arg(line.as_str())
                .arg("PX")
                .arg(millis(ttl)),
        )
        .await
    }
}
