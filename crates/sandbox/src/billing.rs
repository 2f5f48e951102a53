//! Pay-per-use, as X bills since February 2026: the developer app holds a
//! credit balance; every successful request is charged by X's price table
//! (reads per resource returned, writes per request); once the balance is
//! spent (it may go slightly negative on the request that crosses zero),
//! requests are refused with 402 `CreditsDepleted`, except `GET
//! /2/users/me`, which X was seen to keep answering.
//!
//! Billing is off unless the sandbox is given credits.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;
use xmcp_openapi::Method;
use xmcp_openapi::prices::{Micros, PriceTable};

/// The app's credits and what it used, per UTC day.
pub struct Billing {
    table: PriceTable,
    /// Micro-dollars left; `None`: billing is off.
    balance: Option<Micros>,
    /// Per day (days since the epoch): micro-dollars charged and posts read.
    days: BTreeMap<i64, (Micros, i64)>,
}

impl Billing {
    pub fn new(credits: Option<Micros>) -> Self {
        Self {
            table: PriceTable::built_in(),
            balance: credits,
            days: BTreeMap::new(),
        }
    }

    pub fn balance(&self) -> Option<Micros> {
        self.balance
    }

    pub fn set_balance(&mut self, balance: Option<Micros>) {
        self.balance = balance;
    }

    /// Whether a request to `op_id` is refused for want of credits.
    pub fn refuses(&self, op_id: &str) -> bool {
        op_id != "getUsersMe" && self.balance.is_some_and(|b| b <= 0)
    }

    /// Charge a successful answer of `method path` (with request `body`).
    pub fn charge(
        &mut self,
        method: &str,
        path: &str,
        body: &Map<String, Value>,
        status: u16,
        answer: &Value,
        now: i64,
    ) {
        let Some(balance) = &mut self.balance else {
            return;
        };
        let Some(method) = Method::parse(&method.to_ascii_lowercase()) else {
            return;
        };
        let Some(price) = self.table.price_of(method, path) else {
            return;
        };
        let cost = self.table.charge(price.rule_for(body), status, answer);
        *balance -= cost;
        let day = self.days.entry(now.div_euclid(86_400)).or_default();
        day.0 += cost;
        if price.base.resource.as_deref() == Some("post") {
            day.1 += xmcp_openapi::prices::Returned::of(answer).data;
        }
    }

    /// `GET /2/usage/tweets`: posts read per day over the last `days`, and
    /// (beyond X's fields) what was charged.
    pub fn usage(&self, days: i64, now: i64) -> Value {
        let today = now.div_euclid(86_400);
        let daily: Vec<Value> = (today - days + 1..=today)
            .map(|d| {
                let (charged, posts) = self.days.get(&d).copied().unwrap_or_default();
                json!({
                    "date": crate::world::rfc3339(d * 86_400),
                    "usage": posts,
                    "charged_usd": charged as f64 / 1e6,
                })
            })
            .collect();
        let total: i64 = self.days.values().map(|(_, posts)| posts).sum();
        json!({"data": {
            "project_id": "1850000000",
            "project_cap": 3_000_000,
            "project_usage": total,
            "cap_reset_day": 1,
            "daily_project_usage": {"project_id": "1850000000", "usage": daily},
            "credits_usd": self.balance.map(|b| b as f64 / 1e6),
        }})
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_charged_until_the_credits_are_spent() {
        let mut b = Billing::new(Some(20_000));
        let none = Map::new();
        assert!(!b.refuses("searchPostsRecent"));
        let three = json!({"data": [{"id": "1"}, {"id": "2"}, {"id": "3"}]});
        b.charge("GET", "/2/tweets/search/recent", &none, 200, &three, 0);
        assert_eq!(b.balance(), Some(5_000));
        b.charge("GET", "/2/tweets/search/recent", &none, 400, &json!({}), 0);
        assert_eq!(b.balance(), Some(5_000), "failures are free");
        b.charge(
            "POST",
            "/2/tweets",
            &none,
            201,
            &json!({"data": {"id": "9"}}),
            0,
        );
        assert_eq!(b.balance(), Some(-10_000), "may go slightly negative");
        assert!(b.refuses("searchPostsRecent"));
        assert!(!b.refuses("getUsersMe"));
        let usage = b.usage(2, 0);
        assert_eq!(usage["data"]["project_usage"], 3);
        assert!(!Billing::new(None).refuses("createPosts"));
    }
}
