//! The store's rate limits against a model: for any sequence of requests,
//! `take_rate` decides as a textbook GCRA does, and never admits more than
//! the burst plus one request per interval over any stretch of time.

use proptest::prelude::*;
use std::collections::HashMap;
use std::sync::Arc;
use xmcp_store::Store;
use xmcp_store::testing::TestDatabase;

const START: i64 = 1_800_000_000_000_000;

/// A GCRA in plain Rust: the reference the SQL must match.
#[derive(Default)]
struct Model {
    tat: HashMap<&'static str, i64>,
}

impl Model {
    fn take(&mut self, bucket: &'static str, now: i64, interval: i64, burst: u32) -> Option<i64> {
        let tat = self.tat.get(bucket).copied().unwrap_or(now).max(now);
        let horizon = now + interval * i64::from(burst);
        if tat + interval <= horizon {
            self.tat.insert(bucket, tat + interval);
            None
        } else {
            Some((tat + interval - horizon).max(1))
        }
    }
}

fn runtime() -> &'static (tokio::runtime::Runtime, Arc<dyn Store>, TestDatabase) {
    static DB: std::sync::OnceLock<(tokio::runtime::Runtime, Arc<dyn Store>, TestDatabase)> =
        std::sync::OnceLock::new();
    DB.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let db = TestDatabase::sqlite();
        let store = rt.block_on(db.open());
        (rt, store, db)
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn take_rate_is_a_gcra(
        interval in 1i64..5_000_000,
        burst in 1u32..6,
        steps in proptest::collection::vec((0i64..4_000_000, any::<bool>()), 1..60),
    ) {
        let (rt, store, _db) = runtime();
        // Fresh buckets for each case, on the one database.
        static CASE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let case = CASE.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let names = [format!("{case}/a"), format!("{case}/b")];
        let mut model = Model::default();
        let mut now = START;
        let mut admitted: Vec<i64> = Vec::new();
        for (dt, second) in steps {
            now += dt;
            let (key, bucket) = if second { ("b", &names[1]) } else { ("a", &names[0]) };
            let got = rt.block_on(store.take_rate(bucket, now, interval, burst)).unwrap();
            prop_assert_eq!(got, model.take(key, now, interval, burst));
            if got.is_none() && !second {
                admitted.push(now);
            }
        }
        // Over any stretch [t0, t1], bucket a admitted at most the burst
        // plus one per whole interval that passed.
        for (i, t0) in admitted.iter().enumerate() {
            for (j, t1) in admitted.iter().enumerate().skip(i) {
                let count = (j - i + 1) as i64;
                prop_assert!(count <= i64::from(burst) + (t1 - t0) / interval);
            }
        }
    }
}
