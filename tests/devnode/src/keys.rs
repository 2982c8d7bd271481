//! API keys: creation with a chosen uid (so the key is deterministic), listing, and the
//! permission check every route makes.

use std::collections::BTreeMap;

use hmac::{Hmac, Mac};
use serde_json::{json, Map, Value};
use sha2::Sha256;
use subtle::ConstantTimeEq;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::tasks::format_date;
use crate::tenant::{self, TenantToken};

/// Every action a key may grant.
pub const ACTIONS: &[&str] = &[
    "*",
    "search",
    "documents.*",
    "documents.add",
    "documents.get",
    "documents.delete",
    "indexes.*",
    "indexes.create",
    "indexes.get",
    "indexes.update",
    "indexes.delete",
    "indexes.swap",
    "tasks.*",
    "tasks.cancel",
    "tasks.delete",
    "tasks.get",
    "settings.*",
    "settings.get",
    "settings.update",
    "stats.*",
    "stats.get",
    "metrics.*",
    "metrics.get",
    "dumps.*",
    "dumps.create",
    "snapshots.*",
    "snapshots.create",
    "version",
    "keys.*",
    "keys.create",
    "keys.get",
    "keys.update",
    "keys.delete",
    "chatCompletions",
];

/// One API key.
#[derive(Debug, Clone)]
pub struct ApiKey {
    pub uid: String,
    pub key: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub actions: Vec<String>,
    pub indexes: Vec<String>,
    pub expires_at: Option<OffsetDateTime>,
    pub created_at: OffsetDateTime,
    pub updated_at: OffsetDateTime,
}

impl ApiKey {
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "description": self.description,
            "key": self.key,
            "uid": self.uid,
            "actions": self.actions,
            "indexes": self.indexes,
            "expiresAt": self.expires_at.map(format_date),
            "createdAt": format_date(self.created_at),
            "updatedAt": format_date(self.updated_at),
        })
    }

    pub(crate) fn allows_action(&self, action: &str) -> bool {
        self.actions.iter().any(|a| {
            a == "*"
                || a == action
                || a.strip_suffix(".*").is_some_and(|p| action.starts_with(&format!("{p}.")))
        })
    }

    /// Whether the key reaches an index (`*`, the exact uid, or a `prefix*` pattern).
    pub fn allows_index(&self, index: &str) -> bool {
        self.indexes.iter().any(|p| match p.strip_suffix('*') {
            Some(prefix) => index.starts_with(prefix),
            None => p == index,
        })
    }
}

/// The key value Meilisearch derives from a uid and the master key: hex(HMAC-SHA256).
pub fn derive_key(master_key: &str, uid: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(master_key.as_bytes())
        .expect("HMAC accepts keys of any length");
    mac.update(uid.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The node's keys, by uid.
#[derive(Debug, Default)]
pub struct KeyStore {
    pub keys: BTreeMap<String, ApiKey>,
}

impl KeyStore {
    /// The two keys Meilisearch creates when it starts with a master key.
    pub fn with_default_keys(master_key: &str) -> Self {
        let mut store = KeyStore::default();
        let now = OffsetDateTime::now_utc();
        for (name, description, actions) in [
            ("Default Search API Key", "Use it to search from the frontend", vec!["search"]),
            ("Default Admin API Key", "Use it for anything that is not a search operation. Caution! Do not expose it on a public frontend", vec!["*"]),
        ] {
            let uid = uuid::Uuid::new_v4().to_string();
            store.keys.insert(uid.clone(), ApiKey {
                key: derive_key(master_key, &uid),
                uid,
                name: Some(name.into()),
                description: Some(description.into()),
                actions: actions.into_iter().map(String::from).collect(),
                indexes: vec!["*".into()],
                expires_at: None,
                created_at: now,
                updated_at: now,
            });
        }
        store
    }

    /// Find a key by its uid or its key value.
    pub fn find(&self, uid_or_key: &str) -> Option<&ApiKey> {
        self.keys.get(uid_or_key).or_else(|| self.keys.values().find(|k| k.key == uid_or_key))
    }

    /// Create a key from a `POST /keys` body.
    pub fn create(&mut self, master_key: &str, body: &Value) -> Result<ApiKey, ApiError> {
        let obj = body.as_object().ok_or_else(|| {
            ApiError::new(
                "bad_request",
                format!("Invalid value type: expected an object, but found {body}"),
            )
        })?;
        for field in obj.keys() {
            if !["uid", "name", "description", "actions", "indexes", "expiresAt"]
                .contains(&field.as_str())
            {
                return Err(ApiError::new("bad_request", format!("Unknown field `{field}`: expected one of `description`, `name`, `uid`, `actions`, `indexes`, `expiresAt`")));
            }
        }
        let uid = match obj.get("uid") {
            None | Some(Value::Null) => uuid::Uuid::new_v4().to_string(),
            Some(Value::String(s)) if uuid::Uuid::parse_str(s).is_ok() => s.to_lowercase(),
            Some(other) => return Err(ApiError::new("invalid_api_key_uid", format!("Invalid value at `.uid`: invalid character: expected an optional prefix of `urn:uuid:` followed by [0-9a-fA-F-], found `{other}`"))),
        };
        if self.keys.contains_key(&uid) {
            return Err(ApiError::new(
                "api_key_already_exists",
                format!("`uid` field value `{uid}` is already an existing API key."),
            ));
        }
        let actions = string_list(obj, "actions", "api_key_actions")?;
        if let Some(bad) = actions.iter().find(|a| !ACTIONS.contains(&a.as_str())) {
            return Err(ApiError::new(
                "invalid_api_key_actions",
                format!(
                    "Unknown value `{bad}` at `.actions[0]`: expected one of {}",
                    ACTIONS.iter().map(|a| format!("`{a}`")).collect::<Vec<_>>().join(", ")
                ),
            ));
        }
        let indexes = string_list(obj, "indexes", "api_key_indexes")?;
        let expires_at = match obj.get("expiresAt") {
            None => return Err(ApiError::new("missing_api_key_expires_at", "Missing field `expiresAt`")),
            Some(Value::Null) => None,
            Some(Value::String(s)) => Some(OffsetDateTime::parse(s, &Rfc3339).map_err(|_| ApiError::new("invalid_api_key_expires_at", format!("Invalid value at `.expiresAt`: `{s}` is not a valid date. It should follow the RFC 3339 format to represents a date or datetime in the future or specified as a null value.")))?),
            Some(other) => return Err(ApiError::new("invalid_api_key_expires_at", format!("Invalid value type at `.expiresAt`: expected a string, but found {other}"))),
        };
        let text = |field: &str, code: &str| -> Result<Option<String>, ApiError> {
            match obj.get(field) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(other) => Err(ApiError::new(
                    code,
                    format!(
                        "Invalid value type at `.{field}`: expected a string, but found {other}"
                    ),
                )),
            }
        };
        let now = OffsetDateTime::now_utc();
        let key = ApiKey {
            key: derive_key(master_key, &uid),
            uid: uid.clone(),
            name: text("name", "invalid_api_key_name")?,
            description: text("description", "invalid_api_key_description")?,
            actions,
            indexes,
            expires_at,
            created_at: now,
            updated_at: now,
        };
        self.keys.insert(uid, key.clone());
        Ok(key)
    }

    /// Apply a `PATCH /keys/{key}` body: only `name` and `description` may change.
    pub fn update(&mut self, uid_or_key: &str, body: &Value) -> Result<ApiKey, ApiError> {
        let uid =
            self.find(uid_or_key).map(|k| k.uid.clone()).ok_or_else(|| not_found(uid_or_key))?;
        let obj = body.as_object().ok_or_else(|| {
            ApiError::new("bad_request", "Invalid value type: expected an object")
        })?;
        let key = self.keys.get_mut(&uid).expect("found above");
        for (field, value) in obj {
            if ["uid", "actions", "indexes", "expiresAt", "key", "createdAt", "updatedAt"]
                .contains(&field.as_str())
            {
                let snake = if field == "expiresAt" {
                    "expires_at".to_string()
                } else {
                    field.to_lowercase()
                };
                return Err(ApiError::new(
                    &format!("immutable_api_key_{snake}"),
                    format!("Immutable field `{field}`: cannot be updated."),
                ));
            }
            if !["name", "description"].contains(&field.as_str()) {
                return Err(ApiError::new(
                    "bad_request",
                    format!("Unknown field `{field}`: expected one of `description`, `name`"),
                ));
            }
            let text = match value {
                Value::Null => None,
                Value::String(s) => Some(s.clone()),
                other => {
                    return Err(ApiError::new(
                        &format!("invalid_api_key_{field}"),
                        format!(
                        "Invalid value type at `.{field}`: expected a string, but found {other}"
                    ),
                    ))
                }
            };
            if field == "name" {
                key.name = text;
            } else {
                key.description = text;
            }
        }
        key.updated_at = OffsetDateTime::now_utc();
        Ok(key.clone())
    }

    pub fn delete(&mut self, uid_or_key: &str) -> Result<(), ApiError> {
        let uid =
            self.find(uid_or_key).map(|k| k.uid.clone()).ok_or_else(|| not_found(uid_or_key))?;
        self.keys.remove(&uid);
        Ok(())
    }
}

pub fn not_found(uid_or_key: &str) -> ApiError {
    ApiError::new("api_key_not_found", format!("API Key `{uid_or_key}` not found."))
}

fn string_list(obj: &Map<String, Value>, field: &str, code: &str) -> Result<Vec<String>, ApiError> {
    match obj.get(field) {
        None => Err(ApiError::new(&format!("missing_{code}"), format!("Missing field `{field}`"))),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(String::from).ok_or_else(|| {
                    ApiError::new(
                        &format!("invalid_{code}"),
                        format!("Invalid value type at `.{field}`: expected an array of strings"),
                    )
                })
            })
            .collect(),
        Some(other) => Err(ApiError::new(
            &format!("invalid_{code}"),
            format!("Invalid value type at `.{field}`: expected an array, but found {other}"),
        )),
    }
}

/// What a request is allowed to do after the `Authorization` header was checked.
#[derive(Debug, Clone)]
pub enum Access {
    /// No master key configured, or the master key itself: everything.
    Full,
    /// An API key: its indexes restrict what the request may see.
    Key(ApiKey),
    /// A tenant token (searches only): its rules restrict the indexes and filter the searches.
    Tenant(TenantToken),
}

impl Access {
    pub fn allows_index(&self, index: &str) -> bool {
        match self {
            Access::Full => true,
            Access::Key(key) => key.allows_index(index),
            Access::Tenant(token) => token.allows_index(index),
        }
    }

    /// The filter every search of `index` must also satisfy (a tenant token's rule).
    pub fn search_filter(&self, index: &str) -> Option<Value> {
        match self {
            Access::Tenant(token) => token.filter(index),
            Access::Full | Access::Key(_) => None,
        }
    }
}

/// Check the bearer token for `action` on `index` (None for routes not tied to one index).
pub fn authorize(
    master_key: Option<&str>,
    store: &KeyStore,
    authorization: Option<&str>,
    action: &str,
    index: Option<&str>,
) -> Result<Access, ApiError> {
    let Some(master) = master_key else { return Ok(Access::Full) };
    let token =
        authorization.and_then(|h| h.strip_prefix("Bearer ")).map(str::trim).ok_or_else(|| {
            ApiError::new(
                "missing_authorization_header",
                "The Authorization header is missing. It must use the bearer authorization method.",
            )
        })?;
    if bool::from(token.as_bytes().ct_eq(master.as_bytes())) {
        return Ok(Access::Full);
    }
    let invalid = || ApiError::new("invalid_api_key", "The provided API key is invalid.");
    if tenant::looks_like_token(token) {
        let tenant = TenantToken::verify(store, token)?;
        if action != "search" || index.is_some_and(|i| !tenant.allows_index(i)) {
            return Err(invalid());
        }
        return Ok(Access::Tenant(tenant));
    }
    let key = store
        .keys
        .values()
        .find(|k| bool::from(k.key.as_bytes().ct_eq(token.as_bytes())))
        .ok_or_else(invalid)?;
    let expired = key.expires_at.is_some_and(|at| at <= OffsetDateTime::now_utc());
    if expired || !key.allows_action(action) || index.is_some_and(|i| !key.allows_index(i)) {
        return Err(invalid());
    }
    Ok(Access::Key(key.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const UID: &str = "8dcbb482-663f-4f15-b9d8-ec8d3d6a21c1";

    #[test]
    fn keys_are_derived_deterministically_from_uid_and_master_key() {
        let mut a = KeyStore::default();
        let mut b = KeyStore::default();
        let body =
            json!({"uid": UID, "actions": ["search"], "indexes": ["products"], "expiresAt": null});
        let ka = a.create("master", &body).unwrap();
        let kb = b.create("master", &body).unwrap();
        assert_eq!(ka.key, kb.key);
        assert_eq!(ka.key.len(), 64);
        assert_ne!(ka.key, derive_key("other-master", UID));
        assert_eq!(a.create("master", &body).unwrap_err().code, "api_key_already_exists");
    }

    #[test]
    fn permissions_follow_actions_and_indexes() {
        let mut store = KeyStore::default();
        let key = store
            .create("m", &json!({"uid": UID, "actions": ["search", "documents.*"], "indexes": ["prod*"], "expiresAt": null}))
            .unwrap();
        let auth = |action: &str, index: Option<&str>| {
            authorize(Some("m"), &store, Some(&format!("Bearer {}", key.key)), action, index)
        };
        assert!(auth("search", Some("products")).is_ok());
        assert!(auth("documents.add", Some("prod-2")).is_ok());
        assert_eq!(auth("search", Some("other")).unwrap_err().code, "invalid_api_key");
        assert_eq!(auth("settings.update", Some("products")).unwrap_err().code, "invalid_api_key");
        assert!(matches!(
            authorize(Some("m"), &store, Some("Bearer m"), "keys.create", None),
            Ok(Access::Full)
        ));
        let missing = authorize(Some("m"), &store, None, "search", None).unwrap_err();
        assert_eq!(
            (missing.status.as_u16(), missing.code.as_str()),
            (401, "missing_authorization_header")
        );
        let wrong = authorize(Some("m"), &store, Some("Bearer nope"), "search", None).unwrap_err();
        assert_eq!(wrong.status.as_u16(), 403);
        assert!(matches!(authorize(None, &store, None, "search", None), Ok(Access::Full)));
    }

    #[test]
    fn key_creation_validates_fields() {
        let mut store = KeyStore::default();
        let err = store.create("m", &json!({"actions": ["search"], "indexes": ["*"]})).unwrap_err();
        assert_eq!(err.code, "missing_api_key_expires_at");
        let err = store
            .create("m", &json!({"actions": ["fly"], "indexes": ["*"], "expiresAt": null}))
            .unwrap_err();
        assert_eq!(err.code, "invalid_api_key_actions");
        let err = store.create("m", &json!({"indexes": ["*"], "expiresAt": null})).unwrap_err();
        assert_eq!(err.code, "missing_api_key_actions");
        let key = store
            .create("m", &json!({"actions": ["*"], "indexes": ["*"], "expiresAt": null}))
            .unwrap();
        let err = store.update(&key.uid, &json!({"actions": ["search"]})).unwrap_err();
        assert_eq!(err.code, "immutable_api_key_actions");
        let updated = store.update(&key.key, &json!({"name": "renamed"})).unwrap();
        assert_eq!(updated.name.as_deref(), Some("renamed"));
        store.delete(&key.uid).unwrap();
        assert_eq!(store.delete(&key.uid).unwrap_err().code, "api_key_not_found");
    }
}
