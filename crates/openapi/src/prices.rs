//! What X charges for an operation: a price table ([`PriceTable`]), kept as
//! data beside this crate (`prices.toml`, with the date and source it was
//! taken from) and replaceable by the operator's own file.
//!
//! X bills reads per resource returned and writes per request. Amounts are
//! micro-dollars (millionths of a US dollar) so that sums are exact.

use crate::tool::Method;
use serde::Deserialize;

/// The table this version of xmcp was released with.
pub const BUILT_IN: &str = include_str!("../prices.toml");

/// Micro-dollars: a millionth of a US dollar.
pub type Micros = i64;

/// How an operation is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Unit {
    /// Per resource returned (a post, a user...).
    Resource,
    /// Per request.
    Request,
}

/// When a rule applies beyond its method and path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// The post's `text` carries a URL.
    Url,
}

/// One priced kind of operation.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// What X's page calls it ("Post read").
    pub name: String,
    pub method: Method,
    /// The path with each parameter as `{}`.
    pub path: String,
    pub exact: bool,
    pub when: Option<Condition>,
    pub unit: Unit,
    /// What a resource is, for per-resource prices ("post", "user").
    pub resource: Option<String>,
    pub price: Micros,
    /// X's page lists this price; otherwise it is assumed (see the table).
    pub listed: bool,
}

impl Rule {
    /// `$0.005 per post`, `$0.015 per request`.
    pub fn describe(&self) -> String {
        let per = match self.unit {
            Unit::Request => "request",
            Unit::Resource => self.resource.as_deref().unwrap_or("resource"),
        };
        format!("{} per {per}", dollars(self.price))
    }

    fn matches(&self, method: Method, path: &str) -> bool {
        self.method == method
            && if self.exact {
                path == self.path
            } else {
                path.strip_prefix(self.path.as_str())
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
            }
    }
}

/// `$0.005`: dollars with as many decimals as the amount needs (at least
/// two, at most six).
pub fn dollars(micros: Micros) -> String {
    let sign = if micros < 0 { "-" } else { "" };
    let m = micros.unsigned_abs();
    let mut frac = format!("{:06}", m % 1_000_000);
    while frac.len() > 2 && frac.ends_with('0') {
        frac.pop();
    }
    format!("{sign}${}.{frac}", m / 1_000_000)
}

/// An operation's prices: the rule that applies by default, and those that
/// apply under a condition instead.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationPrice {
    pub base: Rule,
    pub conditional: Vec<(Condition, Rule)>,
}

impl OperationPrice {
    /// The rule for a call with these arguments.
    pub fn rule_for(&self, args: &serde_json::Map<String, serde_json::Value>) -> &Rule {
        self.conditional
            .iter()
            .find(|(c, _)| match c {
                Condition::Url => args
                    .get("text")
                    .and_then(serde_json::Value::as_str)
                    .is_some_and(has_url),
            })
            .map_or(&self.base, |(_, r)| r)
    }

    /// The most one request can cost per unit, whatever its arguments.
    pub fn highest(&self) -> &Rule {
        self.conditional
            .iter()
            .map(|(_, r)| r)
            .fold(&self.base, |a, b| if b.price > a.price { b } else { a })
    }
}

/// Whether a post's text carries a URL, as X's link detection would see
/// one: a scheme, or a `www.` host.
pub fn has_url(text: &str) -> bool {
    let lower = text.to_ascii_lowercase();
    lower.contains("http://") || lower.contains("https://") || lower.contains("www.")
}

/// Resources of each kind in an answer: `data` (a list, or one object),
/// and the expanded users and posts in `includes`.
pub struct Returned {
    pub data: i64,
    pub users: i64,
    pub posts: i64,
}

impl Returned {
    pub fn of(answer: &serde_json::Value) -> Self {
        use serde_json::Value;
        let data = match answer.get("data") {
            Some(Value::Array(items)) => items.len() as i64,
            Some(Value::Null) | None => 0,
            Some(_) => 1,
        };
        let count = |kind: &str| {
            answer
                .pointer(&format!("/includes/{kind}"))
                .and_then(Value::as_array)
                .map_or(0, |a| a.len() as i64)
        };
        Self {
            data,
            users: count("users"),
            posts: count("tweets") + count("posts"),
        }
    }
}

/// The table as read: its provenance and rules.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    /// Where the prices were taken from.
    pub source: String,
    /// When (a date).
    pub taken: String,
    pub rules: Vec<Rule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTable {
    source: String,
    taken: String,
    rule: Vec<RawRule>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    name: String,
    method: String,
    path: String,
    #[serde(default)]
    exact: bool,
    when: Option<Condition>,
    unit: Unit,
    resource: Option<String>,
    price: f64,
    listed: bool,
}

/// A price table that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the price table is not valid: {0}")]
pub struct PriceError(String);

/// Each `{parameter}` of a path as `{}`.
pub fn normalized(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "{}" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

impl PriceTable {
    /// The table this version of xmcp was released with.
    pub fn built_in() -> Self {
        // Checked by a test: the built-in table always parses.
        Self::parse(BUILT_IN).unwrap_or_else(|_| Self {
            source: String::new(),
            taken: String::new(),
            rules: Vec::new(),
        })
    }

    /// Read a table in the format of `prices.toml`.
    pub fn parse(text: &str) -> Result<Self, PriceError> {
        let raw: RawTable = toml::from_str(text).map_err(|e| PriceError(e.to_string()))?;
        let mut rules = Vec::with_capacity(raw.rule.len());
        for r in raw.rule {
            let method = Method::parse(&r.method.to_ascii_lowercase()).ok_or_else(|| {
                PriceError(format!("rule `{}`: unknown method `{}`", r.name, r.method))
            })?;
            if !r.path.starts_with('/') {
                return Err(PriceError(format!(
                    "rule `{}`: the path must start with /",
                    r.name
                )));
            }
            if !(0.0..=1_000.0).contains(&r.price) {
                return Err(PriceError(format!(
                    "rule `{}`: price {} is not between $0 and $1000",
                    r.name, r.price
                )));
            }
            rules.push(Rule {
                name: r.name,
                method,
                path: normalized(&r.path),
                exact: r.exact,
                when: r.when,
                unit: r.unit,
                resource: r.resource,
                price: (r.price * 1_000_000.0).round() as Micros,
                listed: r.listed,
            });
        }
        Ok(Self {
            source: raw.source,
            taken: raw.taken,
            rules,
        })
    }

    /// The price of reading one resource at `path` (a user, a post), if
    /// the table prices it per resource.
    pub fn read_price(&self, path: &str) -> Option<Micros> {
        self.price_of(Method::Get, path)
            .filter(|p| p.base.unit == Unit::Resource)
            .map(|p| p.base.price)
    }

    /// What X charges for an answer with `status` and body `answer` to a
    /// call priced by `rule`: nothing for a failure (X bills only
    /// successful requests), the request's price for a write, and per
    /// resource returned for a read, expanded users and posts included.
    pub fn charge(&self, rule: &Rule, status: u16, answer: &serde_json::Value) -> Micros {
        if !(200..300).contains(&status) {
            return 0;
        }
        match rule.unit {
            Unit::Request => rule.price,
            Unit::Resource => {
                let r = Returned::of(answer);
                rule.price.saturating_mul(r.data)
                    + self
                        .read_price("/2/users/{id}")
                        .unwrap_or(0)
                        .saturating_mul(r.users)
                    + self
                        .read_price("/2/tweets/{id}")
                        .unwrap_or(0)
                        .saturating_mul(r.posts)
            }
        }
    }

    /// The prices of the operation `method path`, or `None` if no rule
    /// covers it.
    pub fn price_of(&self, method: Method, path: &str) -> Option<OperationPrice> {
        let path = normalized(path);
        let mut conditional = Vec::new();
        for rule in self.rules.iter().filter(|r| r.matches(method, &path)) {
            match rule.when {
                Some(c) => conditional.push((c, rule.clone())),
                None => {
                    return Some(OperationPrice {
                        base: rule.clone(),
                        conditional,
                    });
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_table_prices_what_xs_page_lists() {
        let t = PriceTable::parse(BUILT_IN).unwrap();
        assert_eq!(t.taken, "2026-08-13");
        let price = |m, p: &str| t.price_of(m, p).unwrap();
        let post = price(Method::Post, "/2/tweets");
        assert_eq!(post.base.price, 15_000);
        let with_url = serde_json::json!({"text": "see https://x.com"});
        assert_eq!(post.rule_for(with_url.as_object().unwrap()).price, 200_000);
        assert_eq!(post.highest().price, 200_000);
        let read = price(Method::Get, "/2/tweets/search/recent");
        assert_eq!((read.base.unit, read.base.price), (Unit::Resource, 5_000));
        assert_eq!(read.base.describe(), "$0.005 per post");
        let followers = price(Method::Get, "/2/users/{id}/followers");
        assert_eq!(followers.base.price, 10_000);
        assert_eq!(
            price(Method::Post, "/2/users/{id}/likes").base.price,
            15_000
        );
        assert_eq!(
            price(Method::Delete, "/2/users/{id}/likes/{tweet_id}")
                .base
                .price,
            10_000
        );
        assert_eq!(
            price(Method::Post, "/2/users/{id}/bookmarks").base.price,
            5_000
        );
        assert!(t.price_of(Method::Patch, "/2/tweets").is_none());
    }

    #[test]
    fn amounts_read_as_dollars() {
        assert_eq!(dollars(5_000), "$0.005");
        assert_eq!(dollars(200_000), "$0.20");
        assert_eq!(dollars(10_000_000), "$10.00");
        assert_eq!(dollars(1), "$0.000001");
        assert_eq!(dollars(-15_000), "-$0.015");
    }

    #[test]
    fn bad_tables_are_refused_with_the_reason() {
        for bad in [
            "",
            "source = \"x\"\ntaken = \"y\"\n[[rule]]\nname = \"a\"\nmethod = \"FETCH\"\npath = \"/2\"\nunit = \"request\"\nprice = 1.0\nlisted = true\n",
            "source = \"x\"\ntaken = \"y\"\n[[rule]]\nname = \"a\"\nmethod = \"GET\"\npath = \"/2\"\nunit = \"request\"\nprice = -1.0\nlisted = true\n",
            "source = \"x\"\ntaken = \"y\"\n[[rule]]\nname = \"a\"\nmethod = \"GET\"\npath = \"/2\"\nunit = \"month\"\nprice = 1.0\nlisted = true\n",
        ] {
            assert!(PriceTable::parse(bad).is_err(), "{bad}");
        }
    }
}
