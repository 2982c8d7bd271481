//! The key layout. Every key starts with the configured prefix (`miroir:` by default):
//!
//! | Key | Type | Holds |
//! |---|---|---|
//! | `task:seq` | string (INCR) | the last task uid handed out; set to 0 on connect when absent, so a later absence means the data was lost |
//! | `task:{uid}` | string | the task record as JSON |
//! | `tasks` | sorted set | every task uid, scored by uid |
//! | `tasks:finished` | sorted set | terminal task uids, scored by finish time (Unix ms) |
//! | `index:{uid}` | hash | `shard_count`, `primary_key`, `settings_version`, `created_at`, `updated_at` |
//! | `indexes` | set | every index uid |
//! | `idem:{key}` | string, `PX` | the idempotency record as JSON |
//! | `session:{id}` | string, `PX` | the session record as JSON |
//! | `sessions` | sorted set | session ids scored by expiry (server ms), for the bound |
//! | `job:seq` | string (INCR) | the last job id |
//! | `job:{id}` | hash | `kind`, `payload`, `state`, `attempts`, `worker`, `last_error` |
//! | `jobs:queued` / `jobs:failed` | sorted set | job ids scored by id (oldest first) |
//! | `jobs:claimed` | sorted set | job ids scored by lease deadline (server ms) |
//! | `rebalance:{run}` | hash | `version`, `doc` |
//! | `rebalances` | set | every run id |
//! | `lease:{name}` | string, `PX` | `{token}:{holder}` while held |
//! | `lease-token:{name}` | string (INCR) | the latest fencing token issued, never expires; starts at the server clock in ms |
//! | `plugin:{name}` | hash | the plugin's keys and values |
//! | `cdc` | hash | cursor key → cursor |
//! | `cdc:log:{index}` | sorted set | change events, scored by position; members `{position}:{event}` |
//! | `cdc:logs` | set | the indexes with a change log |
//! | `cdc:seq:{index}` | string (INCR) | the last position given in `cdc:log:{index}` |

/// The prefix used when none is configured.
pub const DEFAULT_PREFIX: &str = "miroir:";

/// Builds the keys of one namespace.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
}

impl Keys {
    /// Keys under `prefix`.
    pub fn new(prefix: impl Into<String>) -> Self {
        Keys { prefix: prefix.into() }
    }

    /// The prefix itself (scripts build per-item keys from it).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, suffix: &str) -> String {
        format!("{}{suffix}", self.prefix)
    }

    /// `task:seq`.
    pub fn task_seq(&self) -> String {
        self.key("task:seq")
    }
    /// `task:{uid}`.
    pub fn task(&self, uid: u64) -> String {
        self.key(&format!("task:{uid}"))
    }
    /// `tasks`.
    pub fn tasks(&self) -> String {
        self.key("tasks")
    }
    /// `tasks:finished`.
    pub fn tasks_finished(&self) -> String {
        self.key("tasks:finished")
    }
    /// `index:{uid}`.
    pub fn index(&self, uid: &str) -> String {
        self.key(&format!("index:{uid}"))
    }
    /// `indexes`.
    pub fn indexes(&self) -> String {
        self.key("indexes")
    }
    /// `idem:{key}`.
    pub fn idempotency(&self, key: &str) -> String {
        self.key(&format!("idem:{key}"))
    }
    /// `session:` (ids are appended by the scripts too).
    pub fn session_prefix(&self) -> String {
        self.key("session:")
    }
    /// `session:{id}`.
    pub fn session(&self, id: &str) -> String {
        self.key(&format!("session:{id}"))
    }
    /// `sessions`.
    pub fn sessions(&self) -> String {
        self.key("sessions")
    }
    /// `job:seq`.
    pub fn job_seq(&self) -> String {
        self.key("job:seq")
    }
    /// `job:` (ids are appended by the scripts).
    pub fn job_prefix(&self) -> String {
        self.key("job:")
    }
    /// `job:{id}`.
    pub fn job(&self, id: u64) -> String {
        self.key(&format!("job:{id}"))
    }
    /// `jobs:queued`.
    pub fn jobs_queued(&self) -> String {
        self.key("jobs:queued")
    }
    /// `jobs:claimed`.
    pub fn jobs_claimed(&self) -> String {
        self.key("jobs:claimed")
    }
    /// `jobs:failed`.
    pub fn jobs_failed(&self) -> String {
        self.key("jobs:failed")
    }
    /// `rebalance:{run}`.
    pub fn rebalance(&self, run: &str) -> String {
        self.key(&format!("rebalance:{run}"))
    }
    /// `rebalances`.
    pub fn rebalances(&self) -> String {
        self.key("rebalances")
    }
    /// `lease:{name}`.
    pub fn lease(&self, name: &str) -> String {
        self.key(&format!("lease:{name}"))
    }
    /// `lease-token:{name}`.
    pub fn lease_token(&self, name: &str) -> String {
        self.key(&format!("lease-token:{name}"))
    }
    /// `plugin:{name}`.
    pub fn plugin(&self, name: &str) -> String {
        self.key(&format!("plugin:{name}"))
    }
    /// `cdc`.
    pub fn cdc(&self) -> String {
        self.key("cdc")
    }
    /// `cdc:log:{index}`.
    pub fn cdc_log(&self, index: &str) -> String {
        self.key(&format!("cdc:log:{index}"))
    }
    /// `cdc:seq:{index}`.
    pub fn cdc_seq(&self, index: &str) -> String {
        self.key(&format!("cdc:seq:{index}"))
    }
    /// `cdc:logs`.
    pub fn cdc_logs(&self) -> String {
        self.key("cdc:logs")
    }
}
