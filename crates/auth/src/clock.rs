//! Time as the authorization server, the vault and the server read it: a
//! parameter, so that tests move it by hand and the store never reads it.

/// Time source. Protocol logic takes `now` from here once per request, so
/// tests can move a manual clock instead of sleeping.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Unix seconds.
    fn now(&self) -> i64;
    /// Unix microseconds, for rate limits. A clock that only counts
    /// seconds (a test's) answers the start of its second.
    fn now_us(&self) -> i64 {
        self.now().saturating_mul(1_000_000)
    }
}

/// The real clock: the one place that reads the system time.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)]
    fn now(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs() as i64)
            .unwrap_or_default()
    }

    #[allow(clippy::disallowed_methods)]
    fn now_us(&self) -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or_default()
    }
}

/// A clock tests move by hand.
#[derive(Debug, Default)]
pub struct ManualClock(std::sync::atomic::AtomicI64);

impl ManualClock {
    pub fn new(start: i64) -> Self {
        Self(std::sync::atomic::AtomicI64::new(start))
    }
    pub fn advance(&self, seconds: i64) {
        self.0
            .fetch_add(seconds, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> i64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}
