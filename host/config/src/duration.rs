//! Durations written the way people write them: `"30s"`, `"500ms"`, `"5m"`, `"24h"`, `"7d"`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A duration read from a humantime string (`"30s"`, `"1m 30s"`, `"24h"`).
///
/// Config fields of this type take a string with a unit; a bare number is refused because it
/// would be ambiguous. Fields that take plain milliseconds are integers whose name ends in `_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct HumanDuration(Duration);

impl HumanDuration {
    /// `secs` seconds.
    pub const fn from_secs(secs: u64) -> Self {
        HumanDuration(Duration::from_secs(secs))
    }

    /// `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        HumanDuration(Duration::from_millis(millis))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }

    /// Whether the duration is zero.
    pub const fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl From<Duration> for HumanDuration {
    fn from(duration: Duration) -> Self {
        HumanDuration(duration)
    }
}

impl From<HumanDuration> for Duration {
    fn from(duration: HumanDuration) -> Self {
        duration.0
    }
}

impl FromStr for HumanDuration {
    type Err = humantime::DurationError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        humantime::parse_duration(s).map(HumanDuration)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        humantime::format_duration(self.0).fmt(f)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

struct HumanDurationVisitor;

impl Visitor<'_> for HumanDurationVisitor {
    type Value = HumanDuration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a duration with a unit, such as \"500ms\", \"30s\", \"5m\" or \"24h\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<HumanDuration, E> {
        v.parse()
            .map_err(|e| E::custom(format!("invalid duration `{v}`: {e} (write e.g. \"30s\")")))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(HumanDurationVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!("30s".parse::<HumanDuration>().expect("s"), HumanDuration::from_secs(30));
        assert_eq!("500ms".parse::<HumanDuration>().expect("ms"), HumanDuration::from_millis(500));
        assert_eq!("24h".parse::<HumanDuration>().expect("h"), HumanDuration::from_secs(86_400));
        assert_eq!("7d".parse::<HumanDuration>().expect("d"), HumanDuration::from_secs(604_800));
    }

    #[test]
    fn round_trips_through_serde() {
        let d: HumanDuration = serde_json::from_str(r#""1m 30s""#).expect("parses");
        assert_eq!(d, HumanDuration::from_secs(90));
        assert_eq!(serde_json::to_string(&d).expect("serializes"), r#""1m 30s""#);
    }

    #[test]
    fn refuses_bare_numbers_and_garbage() {
        assert!(serde_json::from_str::<HumanDuration>("30").is_err());
        let error = serde_json::from_str::<HumanDuration>(r#""soon""#).expect_err("garbage");
        assert!(error.to_string().contains("invalid duration `soon`"), "{error}");
    }
}
