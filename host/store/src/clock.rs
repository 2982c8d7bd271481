//! Wall-clock helpers shared by the backends: dates as Unix nanoseconds and milliseconds.
//!
//! Backends store dates as integers so they sort and compare without parsing; these helpers are
//! the one place that converts, so every backend rounds the same way.

use std::time::Duration;

use time::OffsetDateTime;

use crate::{StoreError, StoreResult};

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    unix_ms(OffsetDateTime::now_utc())
}

/// `date` in milliseconds since the Unix epoch (truncated).
pub fn unix_ms(date: OffsetDateTime) -> i64 {
    i64::try_from(date.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// `date` in nanoseconds since the Unix epoch; refuses dates outside years 1677..2262.
pub fn to_nanos(date: OffsetDateTime) -> StoreResult<i64> {
    i64::try_from(date.unix_timestamp_nanos())
        .map_err(|_| StoreError::Invalid(format!("date {date} is out of the storable range")))
}

/// The date `nanos` nanoseconds after the Unix epoch.
pub fn from_nanos(nanos: i64) -> StoreResult<OffsetDateTime> {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(nanos))
        .map_err(|e| StoreError::Corrupt(format!("stored date {nanos}: {e}")))
}

/// `d` in whole milliseconds, at least 1 (Redis refuses `PX 0`), saturating.
pub fn ttl_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX).max(1)
}

/// Serde helpers writing an [`OffsetDateTime`] as Unix nanoseconds.
pub mod serde_nanos {
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use time::OffsetDateTime;

    /// Serializes `date` as an integer of Unix nanoseconds.
    pub fn serialize<S: Serializer>(date: &OffsetDateTime, s: S) -> Result<S::Ok, S::Error> {
        super::to_nanos(*date).map_err(serde::ser::Error::custom)?.serialize(s)
    }

    /// Reads an integer of Unix nanoseconds.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<OffsetDateTime, D::Error> {
        super::from_nanos(i64::deserialize(d)?).map_err(serde::de::Error::custom)
    }

    /// The same for an optional date.
    pub mod option {
        use super::*;

        /// Serializes `date` as Unix nanoseconds or `null`.
        pub fn serialize<S: Serializer>(
            date: &Option<OffsetDateTime>,
            s: S,
        ) -> Result<S::Ok, S::Error> {
            match date {
                Some(d) => {
                    super::super::to_nanos(*d).map_err(serde::ser::Error::custom)?.serialize(s)
                }
                None => s.serialize_none(),
            }
        }

        /// Reads Unix nanoseconds or `null`.
        pub fn deserialize<'de, D: Deserializer<'de>>(
            d: D,
        ) -> Result<Option<OffsetDateTime>, D::Error> {
            Option::<i64>::deserialize(d)?
                .map(super::super::from_nanos)
                .transpose()
                .map_err(serde::de::Error::custom)
        }
    }
}
