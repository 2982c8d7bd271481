//! Tenant tokens: JWTs (HS256, HS384 or HS512) signed with an API key's value, naming that key
//! by `apiKeyUid`, with `searchRules` (the indexes the token reaches and a filter for each) and
//! an optional `exp`. A token is valid for searches only; every search it makes is restricted by
//! its rule's filter. Any problem with a token answers `invalid_api_key`, as Meilisearch does.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Map, Value};
use sha2::{Sha256, Sha384, Sha512};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::error::ApiError;
use crate::keys::{ApiKey, KeyStore};

/// A verified tenant token: the key that signed it and its search rules.
#[derive(Debug, Clone)]
pub struct TenantToken {
    /// The API key named by `apiKeyUid`, whose value signed the token.
    pub key: ApiKey,
    /// Index pattern → rule (`null`, `{}` or `{"filter": ...}`).
    rules: Map<String, Value>,
}

fn invalid() -> ApiError {
    ApiError::new("invalid_api_key", "The provided API key is invalid.")
}

fn decode_json(part: &str) -> Result<Value, ApiError> {
    let bytes = URL_SAFE_NO_PAD.decode(part.trim_end_matches('=')).map_err(|_| invalid())?;
    serde_json::from_slice(&bytes).map_err(|_| invalid())
}

fn signature(alg: &str, secret: &[u8], signed: &[u8]) -> Option<Vec<u8>> {
    macro_rules! mac {
        ($hash:ty) => {{
            let mut mac = Hmac::<$hash>::new_from_slice(secret).ok()?;
            mac.update(signed);
            Some(mac.finalize().into_bytes().to_vec())
        }};
    }
    match alg {
        "HS256" => mac!(Sha256),
        "HS384" => mac!(Sha384),
        "HS512" => mac!(Sha512),
        _ => None,
    }
}

/// Whether `token` has the shape of a JWT (three dot-separated parts).
pub fn looks_like_token(token: &str) -> bool {
    token.split('.').count() == 3
}

impl TenantToken {
    /// Verifies `token` against the keys of `store`: signature, expiry, the signing key's own
    /// expiry and its `search` right.
    pub fn verify(store: &KeyStore, token: &str) -> Result<TenantToken, ApiError> {
        let mut parts = token.split('.');
        let (Some(header), Some(payload), Some(sig)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid());
        };
        let header_json = decode_json(header)?;
        let alg = header_json.get("alg").and_then(Value::as_str).ok_or_else(invalid)?;
        let claims = decode_json(payload)?;
        let uid = claims.get("apiKeyUid").and_then(Value::as_str).ok_or_else(invalid)?;
        let key = store.keys.get(uid).cloned().ok_or_else(invalid)?;
        let expected = signature(alg, key.key.as_bytes(), format!("{header}.{payload}").as_bytes())
            .ok_or_else(invalid)?;
        let given = URL_SAFE_NO_PAD.decode(sig.trim_end_matches('=')).map_err(|_| invalid())?;
        if !bool::from(expected.ct_eq(&given)) {
            return Err(invalid());
        }
        let now = OffsetDateTime::now_utc();
        match claims.get("exp") {
            None | Some(Value::Null) => {}
            Some(exp) => {
                let exp = exp.as_i64().ok_or_else(invalid)?;
                if exp <= now.unix_timestamp() {
                    return Err(invalid());
                }
            }
        }
        if key.expires_at.is_some_and(|at| at <= now) || !key.allows_action("search") {
            return Err(invalid());
        }
        let rules = match claims.get("searchRules") {
            Some(Value::Object(map)) => map.clone(),
            Some(Value::Array(list)) => list
                .iter()
                .map(|p| p.as_str().map(|p| (p.to_owned(), Value::Null)).ok_or_else(invalid))
                .collect::<Result<_, _>>()?,
            _ => return Err(invalid()),
        };
        Ok(TenantToken { key, rules })
    }

    /// The rule for `index`: an exact name first, then the longest matching `prefix*` pattern.
    fn rule(&self, index: &str) -> Option<&Value> {
        if let Some(rule) = self.rules.get(index) {
            return Some(rule);
        }
        self.rules
            .iter()
            .filter_map(|(pattern, rule)| {
                let prefix = pattern.strip_suffix('*')?;
                index.starts_with(prefix).then_some((prefix.len(), rule))
            })
            .max_by_key(|(len, _)| *len)
            .map(|(_, rule)| rule)
    }

    /// Whether the token reaches `index` (its rules and its key both allow it).
    pub fn allows_index(&self, index: &str) -> bool {
        self.key.allows_index(index) && self.rule(index).is_some()
    }

    /// The filter the token imposes on searches of `index`, if any.
    pub fn filter(&self, index: &str) -> Option<Value> {
        self.rule(index)?.get("filter").filter(|f| !f.is_null()).cloned()
    }
}

/// The top-level (AND-ed) elements of a filter.
fn and_elements(filter: &Value) -> Vec<Value> {
    match filter {
        Value::Null => Vec::new(),
        Value::Array(items) => items.clone(),
        other => vec![other.clone()],
    }
}

/// `filter` restricted by `rule` (both must hold), in the array form of a filter.
pub fn restrict(filter: Option<&Value>, rule: &Value) -> Value {
    let mut all = and_elements(rule);
    all.extend(filter.map(and_elements).unwrap_or_default());
    Value::Array(all)
}

/// A filter as one string expression (for `GET` search parameters).
pub fn expression(filter: &Value) -> String {
    match filter {
        Value::String(s) => format!("({s})"),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::Array(any) => {
                    format!("({})", any.iter().map(expression).collect::<Vec<_>>().join(" OR "))
                }
                other => expression(other),
            })
            .collect::<Vec<_>>()
            .join(" AND "),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sign(key: &str, claims: &Value) -> String {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
        let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
        let sig = signature("HS256", key.as_bytes(), format!("{header}.{payload}").as_bytes())
            .expect("HS256");
        format!("{header}.{payload}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    fn store() -> (KeyStore, ApiKey) {
        let mut store = KeyStore::default();
        let key = store
            .create(
                "master",
                &json!({"actions": ["search"], "indexes": ["prod*"], "expiresAt": null}),
            )
            .expect("key");
        (store, key)
    }

    #[test]
    fn a_signed_token_carries_its_rules() {
        let (store, key) = store();
        let claims = json!({"apiKeyUid": key.uid, "searchRules": {"*": null, "products": {"filter": "kind = a"}}});
        let token = TenantToken::verify(&store, &sign(&key.key, &claims)).expect("valid");
        assert!(token.allows_index("products"));
        assert!(token.allows_index("prod-2"));
        assert!(!token.allows_index("movies"), "the key does not reach it");
        assert_eq!(token.filter("products"), Some(json!("kind = a")));
        assert_eq!(token.filter("prod-2"), None);
    }

    #[test]
    fn bad_signature_expiry_or_unknown_key_are_invalid() {
        let (store, key) = store();
        let rules = json!(["products"]);
        let bad_sig = sign("other", &json!({"apiKeyUid": key.uid, "searchRules": rules}));
        let expired =
            sign(&key.key, &json!({"apiKeyUid": key.uid, "searchRules": rules, "exp": 1}));
        let unknown = sign(
            &key.key,
            &json!({"apiKeyUid": "3c7bc6a6-0000-4000-8000-000000000000", "searchRules": rules}),
        );
        let no_rules = sign(&key.key, &json!({"apiKeyUid": key.uid}));
        for token in [bad_sig, expired, unknown, no_rules, "a.b.c".to_owned()] {
            assert_eq!(TenantToken::verify(&store, &token).unwrap_err().code, "invalid_api_key");
        }
    }

    #[test]
    fn rules_restrict_filters_with_and() {
        assert_eq!(restrict(Some(&json!("b = 2")), &json!("a = 1")), json!(["a = 1", "b = 2"]));
        assert_eq!(
            restrict(Some(&json!(["b = 2", ["c = 3", "d = 4"]])), &json!("a = 1")),
            json!(["a = 1", "b = 2", ["c = 3", "d = 4"]])
        );
        assert_eq!(
            expression(&json!(["a = 1", ["c = 3", "d = 4"]])),
            "(a = 1) AND ((c = 3) OR (d = 4))"
        );
    }
}
