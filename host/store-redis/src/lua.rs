//! Lua pieces shared by several scripts, and the scripts that belong to no single table.

use std::sync::LazyLock;

use redis::Script;

/// Sets `now` to the server's clock in milliseconds. Scripts use the server clock so every
/// Miroir instance measures deadlines on one clock.
pub(crate) const NOW: &str = "
local __t = redis.call('TIME')
local now = tonumber(__t[1]) * 1000 + math.floor(tonumber(__t[2]) / 1000)
";

/// `fence_ok(token_key, token)`: true when no fence is given (`''`) or `token` is the latest
/// token issued (the counter at `token_key`).
pub(crate) const FENCE_OK: &str = "
local function fence_ok(key, token)
  if token == '' then return true end
  return redis.call('GET', key) == token
end
";

/// Drops expired members of the session index. KEYS: sessions. Returns how many.
pub(crate) static PURGE_SESSIONS: LazyLock<Script> = LazyLock::new(|| {
    Script::new(&format!(
        "{NOW}
        return redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)"
    ))
});

/// Deletes a record and removes its id from the set that lists such records.
/// KEYS: the record key, the set. ARGV: the id. Returns whether the record existed.
pub(crate) static DELETE_MEMBER: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        "redis.call('SREM', KEYS[2], ARGV[1])
         return redis.call('DEL', KEYS[1])",
    )
});
