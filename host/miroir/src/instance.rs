//! This instance's id: config `instance_id`, else `POD_NAME`, else host name and process id.

use miroir_config::Config;

/// The id this instance uses in leader election and logs.
pub fn instance_id(config: &Config) -> String {
    resolve(config.instance_id.as_deref(), std::env::var("POD_NAME").ok().as_deref())
}

fn resolve(configured: Option<&str>, pod_name: Option<&str>) -> String {
    if let Some(id) = configured.filter(|s| !s.is_empty()) {
        return id.to_owned();
    }
    if let Some(pod) = pod_name.filter(|s| !s.is_empty()) {
        return pod.to_owned();
    }
    let host = hostname::get().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default();
    let host = if host.is_empty() { "miroir".to_owned() } else { host };
    format!("{host}-{}", std::process::id())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_wins_then_pod_name_then_host_and_pid() {
        assert_eq!(resolve(Some("a"), Some("pod-1")), "a");
        assert_eq!(resolve(None, Some("pod-1")), "pod-1");
        assert_eq!(
            resolve(Some(""), None).rsplit('-').next(),
            Some(std::process::id().to_string().as_str())
        );
    }
}
