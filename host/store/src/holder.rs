//! Who holds a lease, written so that a restarted process can recognise a lease left by its own
//! dead predecessor and release it at once instead of waiting for it to expire.
//!
//! A holder is `instance|host|pid|incarnation`, optionally followed by `|suffix` (one holder per
//! acquisition, e.g. a write's sequence number). `host` names the machine and process namespace
//! (host name, kernel boot id, pid namespace), so two holders with the same `host` compare
//! process ids meaningfully. `incarnation` is drawn once per process start. A holder is a dead
//! predecessor of this process when it has the same `host` and either this process's pid with
//! another incarnation (a container restarted with the same pid) or a pid that no longer runs.
//! Where that cannot be told (no `/proc`), nothing is released early: leases expire as before.

use std::sync::OnceLock;

/// A lease holder as written in the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    instance: String,
    host: String,
    pid: u32,
    incarnation: String,
}

impl LeaseHolder {
    /// The holder for this process, running as `instance` (its instance id, shown in logs and
    /// `/_miroir/leader`).
    pub fn this_process(instance: &str) -> Self {
        LeaseHolder {
            instance: clean(instance),
            host: this_host().to_owned(),
            pid: std::process::id(),
            incarnation: this_incarnation().to_owned(),
        }
    }

    /// The holder in `text`, if it is one this module wrote (a trailing `|suffix` is allowed).
    pub fn parse(text: &str) -> Option<Self> {
        let mut fields = text.split('|');
        let instance = fields.next()?.to_owned();
        let host = fields.next()?.to_owned();
        let pid = fields.next()?.parse().ok()?;
        let incarnation = fields.next()?.to_owned();
        if instance.is_empty() || host.is_empty() || incarnation.is_empty() {
            return None;
        }
        Some(LeaseHolder { instance, host, pid, incarnation })
    }

    /// The instance id part.
    pub fn instance(&self) -> &str {
        &self.instance
    }

    /// The string written in the store.
    pub fn encode(&self) -> String {
        format!("{}|{}|{}|{}", self.instance, self.host, self.pid, self.incarnation)
    }

    /// Whether the lease holder `other` (as read from the store) is a process of this machine
    /// and namespace that is no longer running — a previous incarnation of this instance, or
    /// any other instance that died there — so its leases can be released at once.
    pub fn is_dead_predecessor(&self, other: &str) -> bool {
        let Some(other) = LeaseHolder::parse(other) else { return false };
        if other.host != self.host {
            return false;
        }
        if other.pid == self.pid {
            return other.incarnation != self.incarnation;
        }
        process_running(other.pid) == Some(false)
    }
}

/// The instance id shown for a lease holder: the `instance` part of a holder this module wrote,
/// else the whole string.
pub fn holder_instance(holder: &str) -> &str {
    match LeaseHolder::parse(holder) {
        Some(_) => holder.split('|').next().unwrap_or(holder),
        None => holder,
    }
}

fn clean(part: &str) -> String {
    part.chars().map(|c| if c == '|' || c.is_whitespace() { '_' } else { c }).collect()
}

fn read_trimmed(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

/// Host name, boot id and pid namespace. Without `/proc` (not Linux) the pid namespace is
/// unknown, and [`process_running`] answers `None`, so nothing is released early.
fn this_host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        let name = read_trimmed("/proc/sys/kernel/hostname")
            .or_else(|| std::env::var("HOSTNAME").ok())
            .unwrap_or_else(|| "unknown".to_owned());
        let boot = read_trimmed("/proc/sys/kernel/random/boot_id").unwrap_or_default();
        let boot: String = boot.chars().filter(char::is_ascii_hexdigit).take(12).collect();
        let namespace: String = std::fs::read_link("/proc/self/ns/pid")
            .ok()
            .map(|link| link.to_string_lossy().chars().filter(char::is_ascii_digit).collect())
            .unwrap_or_default();
        clean(&format!("{name}~{boot}~{namespace}"))
    })
}

/// Drawn once per process start: distinguishes this process from an earlier one with the same
/// pid (a restarted container is often pid 1 again).
fn this_incarnation() -> &'static str {
    static INCARNATION: OnceLock<String> = OnceLock::new();
    INCARNATION.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        format!("{nanos:x}")
    })
}

/// Whether process `pid` runs (a zombie does not), or `None` when this cannot be told.
fn process_running(pid: u32) -> Option<bool> {
    if std::fs::metadata("/proc/self/stat").is_err() {
        return None;
    }
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => {
            // `pid (comm) state ...`: comm may hold spaces and parentheses, so read after the
            // last `)`.
            let state =
                stat.rsplit_once(')').and_then(|(_, rest)| rest.trim_start().chars().next());
            Some(!matches!(state, Some('Z' | 'X' | 'x')))
        }
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => Some(false),
        Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holders_round_trip_and_show_their_instance() {
        let me = LeaseHolder::this_process("inst-a");
        let text = format!("{}|7", me.encode());
        assert_eq!(LeaseHolder::parse(&text), Some(me.clone()));
        assert_eq!(holder_instance(&text), "inst-a");
        assert_eq!(holder_instance("dead-instance#0"), "dead-instance#0");
        assert_eq!(LeaseHolder::parse("a|b|notapid|c"), None);
    }

    #[test]
    fn this_process_and_live_processes_are_not_dead() {
        let me = LeaseHolder::this_process("inst-a");
        assert!(!me.is_dead_predecessor(&me.encode()));
        // Another instance of this very process (two states in one test process).
        let sibling = LeaseHolder::this_process("inst-b");
        assert!(!me.is_dead_predecessor(&sibling.encode()));
        // A foreign or unparseable holder is never released early.
        assert!(!me.is_dead_predecessor("someone-else"));
        let elsewhere = LeaseHolder { host: "other~1~2".into(), pid: 1, ..me.clone() };
        assert!(!me.is_dead_predecessor(&elsewhere.encode()));
    }

    #[test]
    fn an_earlier_incarnation_or_a_dead_pid_is_dead() {
        let me = LeaseHolder::this_process("inst-a");
        let restarted = LeaseHolder { incarnation: "earlier".into(), ..me.clone() };
        assert!(me.is_dead_predecessor(&restarted.encode()));
        if process_running(std::process::id()) == Some(true) {
            // A child that exited and was reaped: its pid no longer runs.
            let mut child = std::process::Command::new("true").spawn().expect("spawn true");
            let pid = child.id();
            child.wait().expect("reap");
            let dead = LeaseHolder { pid, incarnation: "x".into(), ..me.clone() };
            assert!(me.is_dead_predecessor(&dead.encode()));
            if me.pid != 1 {
                let init = LeaseHolder { pid: 1, incarnation: "x".into(), ..me.clone() };
                assert!(!me.is_dead_predecessor(&init.encode()), "pid 1 runs");
            }
        }
    }
}
