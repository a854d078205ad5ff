//! The log of requests refused for a missing or wrong token, summarised per address: the first
//! refusal from an address is logged at once, later ones at most once per [`WINDOW`] as one line
//! with their count. A client guessing tokens (or a misconfigured one retrying in a loop) cannot
//! flood the log; `meterd_http_unauthorized_total` still counts every refusal.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// At most one summary line per address in this time.
pub const WINDOW: Duration = Duration::from_secs(60);
/// Addresses followed one by one; refusals from further addresses are summed together.
const MAX_ADDRESSES: usize = 4096;

struct Entry {
    last_logged: Instant,
    /// Refusals since the last line, not yet logged.
    pending: u64,
    last_path: String,
}

#[derive(Default)]
struct Inner {
    by_address: HashMap<IpAddr, Entry>,
    /// Refusals from addresses beyond [`MAX_ADDRESSES`], and when they were last logged.
    others: u64,
    others_logged: Option<Instant>,
}

/// Refused requests by address.
#[derive(Default)]
pub struct Refusals(Mutex<Inner>);

fn first_line(remote: SocketAddr, path: &str) {
    tracing::warn!(remote = %remote, path = %path, "billing API request without a valid token refused");
}

fn summary_line(address: IpAddr, path: &str, count: u64) {
    tracing::warn!(
        remote = %address,
        last_path = %path,
        refused = count,
        "billing API requests without a valid token refused from this address since the last report"
    );
}

impl Refusals {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A refused request from `remote` for `path`: logs what is due.
    pub fn refused(&self, remote: SocketAddr, path: &str, now: Instant) {
        // A target can be 8 KiB and hold control characters: the log keeps its start, escaped.
        let path = crate::model::limits::quote(path);
        let path = path.as_str();
        let ip = remote.ip();
        let mut inner = self.lock();
        if let Some(e) = inner.by_address.get_mut(&ip) {
            e.pending += 1;
            path.clone_into(&mut e.last_path);
            if now.duration_since(e.last_logged) >= WINDOW {
                let n = std::mem::take(&mut e.pending);
                e.last_logged = now;
                drop(inner);
                summary_line(ip, path, n);
            }
            return;
        }
        if inner.by_address.len() >= MAX_ADDRESSES {
            Self::evict(&mut inner, now);
        }
        if inner.by_address.len() >= MAX_ADDRESSES {
            inner.others += 1;
            let due = inner.others_logged.is_none_or(|t| now.duration_since(t) >= WINDOW);
            if due {
                let n = std::mem::take(&mut inner.others);
                inner.others_logged = Some(now);
                drop(inner);
                tracing::warn!(
                    refused = n,
                    "billing API requests without a valid token refused from addresses beyond the {MAX_ADDRESSES} followed one by one"
                );
            }
            return;
        }
        inner.by_address.insert(
            ip,
            Entry {
                last_logged: now,
                pending: 0,
                last_path: path.to_owned(),
            },
        );
        drop(inner);
        first_line(remote, path);
    }

    /// Forget addresses quiet for a window, logging what they still had pending.
    fn evict(inner: &mut Inner, now: Instant) {
        inner.by_address.retain(|ip, e| {
            if now.duration_since(e.last_logged) < WINDOW {
                return true;
            }
            if e.pending > 0 {
                summary_line(*ip, &e.last_path, e.pending);
            }
            false
        });
    }

    /// Log the counts whose window has passed (called once per window by the server).
    pub fn flush(&self, now: Instant) {
        let mut inner = self.lock();
        for (ip, e) in inner.by_address.iter_mut() {
            if e.pending > 0 && now.duration_since(e.last_logged) >= WINDOW {
                summary_line(*ip, &e.last_path, std::mem::take(&mut e.pending));
                e.last_logged = now;
            }
        }
        Self::evict(&mut inner, now);
    }

    /// Log every pending count (at shutdown).
    pub fn flush_all(&self) {
        let mut inner = self.lock();
        for (ip, e) in inner.by_address.iter_mut() {
            if e.pending > 0 {
                summary_line(*ip, &e.last_path, std::mem::take(&mut e.pending));
            }
        }
        if inner.others > 0 {
            tracing::warn!(
                refused = inner.others,
                "billing API requests without a valid token refused from addresses beyond the {MAX_ADDRESSES} followed one by one"
            );
            inner.others = 0;
        }
    }

    /// Refusals not yet logged from `ip` (for tests).
    pub fn pending(&self, ip: IpAddr) -> Option<u64> {
        self.lock().by_address.get(&ip).map(|e| e.pending)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_then_one_count_per_window() {
        let r = Refusals::default();
        let a: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let b: SocketAddr = "192.0.2.8:4000".parse().unwrap();
        let t0 = Instant::now();
        r.refused(a, "/v1/batches", t0);
        assert_eq!(r.pending(a.ip()), Some(0), "the first is logged at once");
        for i in 1..=99 {
            r.refused(a, "/v1/batches", t0 + Duration::from_millis(i * 100));
        }
        assert_eq!(r.pending(a.ip()), Some(99), "the next 99 wait for the window");
        r.refused(b, "/metrics", t0 + Duration::from_secs(1));
        assert_eq!(r.pending(b.ip()), Some(0), "another address has its own first line");
        r.flush(t0 + Duration::from_secs(30));
        assert_eq!(r.pending(a.ip()), Some(99), "not before the window");
        r.refused(a, "/v1/batches", t0 + WINDOW);
        assert_eq!(r.pending(a.ip()), Some(0), "100 logged in one line");
        r.refused(a, "/v1/batches", t0 + WINDOW + Duration::from_secs(1));
        r.flush(t0 + 2 * WINDOW + Duration::from_secs(1));
        assert_eq!(r.pending(a.ip()), Some(0), "the flush logs what is due");
    }

    #[test]
    fn addresses_beyond_the_limit_are_counted_together() {
        let r = Refusals::default();
        let t0 = Instant::now();
        for i in 0..(MAX_ADDRESSES as u32 + 10) {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            r.refused(SocketAddr::from((ip, 1)), "/x", t0);
        }
        let inner = r.lock();
        assert_eq!(inner.by_address.len(), MAX_ADDRESSES);
        assert_eq!(inner.others, 9, "the first beyond was logged, nine wait");
    }
}
