//! Identifiers of the things Miroir routes between.
//!
//! String identifiers are validated when they are made, so holding one means it is well formed.

use std::fmt;
use std::str::FromStr;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::{ApiError, ErrorCode};

/// The uid of an index, validated exactly as Meilisearch validates it: non-empty, at most 400
/// bytes, only ASCII letters, digits, `-` and `_`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct IndexUid(String);

/// An index uid that Meilisearch would refuse. Its message is Meilisearch's own.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a valid index uid. Index uid can be an integer or a string containing only \
     alphanumeric characters, hyphens (-) and underscores (_), and can not be more than 512 bytes."
)]
pub struct InvalidIndexUid(pub String);

impl InvalidIndexUid {
    /// The `invalid_index_uid` error a client receives for this uid.
    pub fn to_api_error(&self) -> ApiError {
        ApiError::new(ErrorCode::InvalidIndexUid, self.to_string())
    }
}

impl IndexUid {
    /// The longest uid Meilisearch accepts, in bytes. Its message says 512, but a real node
    /// refuses any uid longer than 400 bytes (a 401-byte uid is `invalid_index_uid`).
    pub const MAX_LEN: usize = 400;

    /// Validates `uid` as an index uid.
    pub fn new(uid: impl Into<String>) -> Result<Self, InvalidIndexUid> {
        let uid = uid.into();
        let valid = !uid.is_empty()
            && uid.len() <= Self::MAX_LEN
            && uid.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if valid {
            Ok(IndexUid(uid))
        } else {
            Err(InvalidIndexUid(uid))
        }
    }

    /// The uid as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for IndexUid {
    type Err = InvalidIndexUid;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IndexUid::new(s)
    }
}

impl fmt::Display for IndexUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for IndexUid {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for IndexUid {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let uid = String::deserialize(deserializer)?;
        IndexUid::new(uid).map_err(de::Error::custom)
    }
}

/// A node id or replica group name that is not well formed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{value}` is not a valid {kind}: use 1 to {max} ASCII letters, digits, `-`, `_` or `.`",
    max = NAME_MAX_LEN
)]
pub struct InvalidId {
    /// What was being named (`node id`, `replica group`).
    pub kind: &'static str,
    /// The refused value.
    pub value: String,
}

/// The longest node id or group name, in bytes. They appear in headers, URLs and logs.
const NAME_MAX_LEN: usize = 128;

fn check_name(kind: &'static str, value: String) -> Result<String, InvalidId> {
    let valid = !value.is_empty()
        && value.len() <= NAME_MAX_LEN
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if valid {
        Ok(value)
    } else {
        Err(InvalidId { kind, value })
    }
}

/// Accepts a string or an unsigned integer, so `id: 3` in YAML and `id: "3"` mean the same.
struct NameVisitor(&'static str);

impl Visitor<'_> for NameVisitor {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "a {} (a string or an unsigned integer)", self.0)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        if v < 0 {
            return Err(E::invalid_value(de::Unexpected::Signed(v), &self));
        }
        Ok(v.to_string())
    }
}

/// Declares a validated name newtype (`NodeId`, `GroupId`).
macro_rules! name_type {
    ($(#[$doc:meta])* $name:ident, $kind:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            /// Validates `value`: 1 to 128 ASCII letters, digits, `-`, `_` or `.`.
            pub fn new(value: impl Into<String>) -> Result<Self, InvalidId> {
                check_name($kind, value.into()).map($name)
            }

            /// The name as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl FromStr for $name {
            type Err = InvalidId;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::new(s)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let value = deserializer.deserialize_any(NameVisitor($kind))?;
                $name::new(value).map_err(de::Error::custom)
            }
        }
    };
}

name_type!(
    /// The stable id of a Meilisearch node. Never reused for another node: shard assignment
    /// hashes it.
    NodeId,
    "node id"
);

name_type!(
    /// The name of a replica group: a set of nodes that together hold every shard.
    GroupId,
    "replica group"
);

/// A shard of an index: `xxh64(primary key) % shard count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ShardId(u32);

impl ShardId {
    /// The shard numbered `n`.
    pub const fn new(n: u32) -> Self {
        ShardId(n)
    }

    /// The shard's number.
    pub const fn get(self) -> u32 {
        self.0
    }
}

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The uid of a Miroir task: the integer SDKs poll at `GET /tasks/{uid}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TaskUid(u64);

impl TaskUid {
    /// The task numbered `n`.
    pub const fn new(n: u64) -> Self {
        TaskUid(n)
    }

    /// The task's number.
    pub const fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for TaskUid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for TaskUid {
    type Err = std::num::ParseIntError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(TaskUid)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_uid_accepts_what_meilisearch_accepts() {
        for uid in ["products", "a", "A-b_c9", "123", &"x".repeat(400)] {
            assert_eq!(IndexUid::new(uid).expect("valid").as_str(), uid);
        }
    }

    #[test]
    fn index_uid_refuses_what_meilisearch_refuses() {
        for uid in ["", "bad uid!", "a.b", "é", "a/b", &"x".repeat(401)] {
            let error = IndexUid::new(uid).expect_err(uid);
            assert_eq!(error.to_api_error().code(), ErrorCode::InvalidIndexUid);
        }
    }

    #[test]
    fn invalid_index_uid_message_is_meilisearch_s() {
        let error = IndexUid::new("bad uid!").expect_err("invalid");
        assert_eq!(
            error.to_string(),
            "`bad uid!` is not a valid index uid. Index uid can be an integer or a string \
             containing only alphanumeric characters, hyphens (-) and underscores (_), and can \
             not be more than 512 bytes."
        );
    }

    #[test]
    fn index_uid_deserialization_validates() {
        let uid: IndexUid = serde_json::from_str(r#""movies""#).expect("valid");
        assert_eq!(uid.to_string(), "movies");
        assert!(serde_json::from_str::<IndexUid>(r#""no way""#).is_err());
        assert_eq!(serde_json::to_string(&uid).expect("serializes"), r#""movies""#);
    }

    #[test]
    fn node_ids_accept_strings_and_integers() {
        let id: NodeId = serde_json::from_str(r#""meili-1.eu""#).expect("string id");
        assert_eq!(id.as_str(), "meili-1.eu");
        let id: NodeId = serde_json::from_str("7").expect("integer id");
        assert_eq!(id.as_str(), "7");
        assert!(serde_json::from_str::<NodeId>("-1").is_err());
        assert!(serde_json::from_str::<NodeId>(r#""has space""#).is_err());
        assert!(serde_json::from_str::<NodeId>(r#""""#).is_err());
    }

    #[test]
    fn invalid_name_says_what_it_names() {
        let error = GroupId::new("a b").expect_err("invalid");
        assert!(error.to_string().contains("replica group"), "{error}");
        let error = NodeId::new("x".repeat(129)).expect_err("too long");
        assert!(error.to_string().contains("node id"), "{error}");
    }

    #[test]
    fn numeric_ids_round_trip() {
        assert_eq!(ShardId::new(12).get(), 12);
        assert_eq!(ShardId::new(12).to_string(), "12");
        let uid: TaskUid = "42".parse().expect("number");
        assert_eq!(uid, TaskUid::new(42));
        assert_eq!(serde_json::to_string(&uid).expect("serializes"), "42");
        assert_eq!(serde_json::from_str::<ShardId>("3").expect("shard"), ShardId::new(3));
    }
}
