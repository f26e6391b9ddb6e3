//! The connection cap's default. Every connection is a file descriptor; the process also needs
//! descriptors for the database (with its WAL and shared-memory files), the media router's UDP
//! sockets, static files being read and the runtime itself. Without a cap, running out shows up
//! as `accept` failing with EMFILE while the listener stays readable, so nothing gets served.

/// Soft `RLIMIT_NOFILE` of this process, read from `/proc/self/limits` (the crate has no
/// `unsafe`, so no `getrlimit`). `None` when unlimited or unreadable.
pub fn open_file_limit() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/self/limits").ok()?;
    parse_limits(&text)
}

fn parse_limits(text: &str) -> Option<u64> {
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    line["Max open files".len()..].split_whitespace().next()?.parse().ok()
}

/// Assumed when the limit cannot be read: the usual Linux soft default.
const FALLBACK_LIMIT: u64 = 1024;

/// The limit minus headroom for everything that is not an HTTP connection: an eighth of it,
/// at least 64 descriptors.
pub fn default_max_connections() -> usize {
    cap_for_limit(open_file_limit().unwrap_or(FALLBACK_LIMIT))
}

fn cap_for_limit(limit: u64) -> usize {
    let headroom = (limit / 8).max(64);
    usize::try_from(limit.saturating_sub(headroom).max(16)).unwrap_or(usize::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_soft_limit() {
        let text = "Limit                     Soft Limit           Hard Limit           Units\n\
                    Max processes             95595                95595                processes\n\
                    Max open files            1024                 4096                 files\n";
        assert_eq!(parse_limits(text), Some(1024));
        assert_eq!(parse_limits("Max open files  unlimited unlimited files\n"), None);
        assert!(open_file_limit().is_some());
    }

    #[test]
    fn leaves_headroom() {
        assert_eq!(cap_for_limit(1024), 896);
        assert_eq!(cap_for_limit(65_536), 57_344);
        assert_eq!(cap_for_limit(100), 36);
        assert_eq!(cap_for_limit(10), 16);
    }
}
