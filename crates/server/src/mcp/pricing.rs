//! What each X tool costs, from the price table: the unit price shown with
//! the tool, the worst case held against the spending caps before a call,
//! and the cost of the answer X gave.

use serde_json::{Map, Value};
use std::collections::HashMap;
use xmcp_openapi::prices::{Micros, OperationPrice, PriceTable, Rule, Unit, dollars};
use xmcp_openapi::{Catalog, Method, ToolSpec};

/// Items a page holds when a call names no `max_results` and the operation
/// declares no default: X's usual page.
const USUAL_PAGE: i64 = 100;

/// Arguments that list the resources to read (`ids=1,2,3`).
const LIST_ARGUMENTS: [&str; 6] = [
    "ids",
    "usernames",
    "media_keys",
    "user_ids",
    "creator_ids",
    "space_ids",
];

/// A call costing this much or more at its worst says so in its
/// description.
const NOTABLE: Micros = 500_000;

/// The prices of a catalog's operations.
pub struct Pricing {
    by_tool: HashMap<String, OperationPrice>,
    /// For operations no rule covers: the table's costliest rule, per
    /// request, so that a cap still holds.
    fallback: Rule,
    /// The table, for what an answer costs.
    table: PriceTable,
}

/// A call's price, chosen before it is made (conditions read the
/// arguments).
pub struct Priced<'a> {
    rule: &'a Rule,
}

impl Pricing {
    pub fn new(table: &PriceTable, catalog: &Catalog) -> Self {
        let by_tool = catalog
            .tools
            .iter()
            .filter_map(|t| Some((t.name.clone(), table.price_of(t.method, &t.path)?)))
            .collect();
        let costliest = table.rules.iter().max_by_key(|r| r.price);
        let fallback = Rule {
            name: "Not in the price table".into(),
            method: Method::Get,
            path: "/".into(),
            exact: false,
            when: None,
            unit: Unit::Request,
            resource: None,
            price: costliest.map_or(1_000_000, |r| r.price),
            listed: false,
        };
        Self {
            by_tool,
            fallback,
            table: table.clone(),
        }
    }

    /// The operations of `catalog` no rule of the table covers.
    pub fn uncovered<'c>(&self, catalog: &'c Catalog) -> Vec<&'c str> {
        catalog
            .tools
            .iter()
            .filter(|t| !self.by_tool.contains_key(&t.name))
            .map(|t| t.name.as_str())
            .collect()
    }

    fn of(&self, spec: &ToolSpec) -> Option<&OperationPrice> {
        self.by_tool.get(&spec.name)
    }

    /// The price of a call of `spec` with `args`.
    pub fn priced(&self, spec: &ToolSpec, args: &Map<String, Value>) -> Priced<'_> {
        Priced {
            rule: self.of(spec).map_or(&self.fallback, |p| p.rule_for(args)),
        }
    }

    /// The unit price as the tool's `_meta` says it (`$0.005 per post`),
    /// and, when a call can cost much, a sentence for its description.
    pub fn describe(&self, spec: &ToolSpec) -> (String, Option<String>) {
        let Some(price) = self.of(spec) else {
            return (
                format!("unpriced: held at {}", self.fallback.describe()),
                None,
            );
        };
        let unit = price.base.describe();
        let mut said = None;
        if let Some((_, costlier)) = price
            .conditional
            .iter()
            .find(|(_, r)| r.price > price.base.price)
        {
            said = Some(format!(
                "Costs {}; {} with a URL.",
                dollars(price.base.price),
                dollars(costlier.price)
            ));
        } else if price.base.unit == Unit::Resource {
            let page = page_limit(spec);
            let most = price.base.price.saturating_mul(page);
            if most >= NOTABLE {
                said = Some(format!(
                    "Costs {} returned: up to {} for {page}.",
                    price.base.describe(),
                    dollars(most)
                ));
            }
        }
        (unit, said)
    }

    /// The most a call of `spec` with `args` can cost: per request, or per
    /// resource times the most it can return (`max_results`, the ids given,
    /// the operation's default page, else X's usual page of 100; one for a
    /// lookup of a single resource).
    pub fn estimate(&self, spec: &ToolSpec, args: &Map<String, Value>) -> Micros {
        let rule = self.priced(spec, args).rule;
        match rule.unit {
            Unit::Request => rule.price,
            Unit::Resource => rule.price.saturating_mul(worst_count(spec, args)),
        }
    }

    /// What X charges for `answer` (status and body) to a call priced
    /// `priced` (see [`PriceTable::charge`]).
    pub fn cost(&self, priced: &Priced<'_>, status: u16, answer: &Value) -> Micros {
        self.table.charge(priced.rule, status, answer)
    }
}

/// The largest page `spec` returns: its `max_results` maximum, else X's
/// usual page.
fn page_limit(spec: &ToolSpec) -> i64 {
    max_results(spec)
        .and_then(|m| m.get("maximum"))
        .and_then(Value::as_i64)
        .unwrap_or(USUAL_PAGE)
}

/// The schema of `spec`'s `max_results` argument, if it pages.
fn max_results(spec: &ToolSpec) -> Option<&Value> {
    spec.input_schema
        .get("properties")
        .and_then(|p| p.get("max_results"))
}

/// The most resources a call can return.
fn worst_count(spec: &ToolSpec, args: &Map<String, Value>) -> i64 {
    if let Some(n) = args.get("max_results").and_then(Value::as_i64) {
        return n.max(1);
    }
    for list in LIST_ARGUMENTS {
        match args.get(list) {
            Some(Value::Array(items)) => return (items.len() as i64).max(1),
            Some(Value::String(s)) => return s.split(',').count() as i64,
            _ => {}
        }
    }
    match max_results(spec) {
        Some(m) => m
            .get("default")
            .and_then(Value::as_i64)
            .unwrap_or_else(|| USUAL_PAGE.min(page_limit(spec))),
        // No paging: one resource (a lookup by id, or yourself).
        None => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn catalog() -> Catalog {
        let doc = json!({
            "openapi": "3.0.0",
            "info": {"version": "t"},
            "components": {"securitySchemes": {"OAuth2UserToken": {"type": "oauth2"}}},
            "paths": {
                "/2/tweets": {"post": {"operationId": "createPosts", "security": [{"OAuth2UserToken": ["tweet.write"]}],
                    "requestBody": {"required": true, "content": {"application/json": {"schema": {"type": "object", "properties": {"text": {"type": "string"}}}}}},
                    "responses": {"201": {"content": {"application/json": {}}}}}},
                "/2/users/{id}/followers": {"get": {"operationId": "getUsersFollowers", "security": [{"OAuth2UserToken": ["follows.read"]}],
                    "parameters": [
                        {"name": "id", "in": "path", "required": true, "schema": {"type": "string"}},
                        {"name": "max_results", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 1000}}
                    ],
                    "responses": {"200": {"content": {"application/json": {}}}}}},
                "/2/users/{id}": {"get": {"operationId": "getUsersById", "security": [{"OAuth2UserToken": ["users.read"]}],
                    "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string"}}],
                    "responses": {"200": {"content": {"application/json": {}}}}}},
            }
        });
        xmcp_openapi::convert(&doc, &Default::default()).unwrap()
    }

    #[test]
    fn estimates_are_the_worst_case_and_costs_what_x_returned() {
        let catalog = catalog();
        let p = Pricing::new(&PriceTable::built_in(), &catalog);
        assert!(p.uncovered(&catalog).is_empty());
        let spec = |n: &str| catalog.get(n).unwrap();
        let args = |v: Value| v.as_object().cloned().unwrap();

        let post = spec("createPosts");
        assert_eq!(p.estimate(post, &args(json!({"text": "hi"}))), 15_000);
        let with_url = args(json!({"text": "see https://example.com"}));
        assert_eq!(p.estimate(post, &with_url), 200_000);
        let priced = p.priced(post, &with_url);
        assert_eq!(p.cost(&priced, 201, &json!({"data": {"id": "1"}})), 200_000);
        assert_eq!(p.cost(&priced, 403, &json!({"title": "Forbidden"})), 0);
        assert_eq!(
            p.describe(post),
            (
                "$0.015 per request".into(),
                Some("Costs $0.015; $0.20 with a URL.".into())
            )
        );

        let followers = spec("getUsersFollowers");
        assert_eq!(
            p.estimate(followers, &args(json!({"max_results": 20}))),
            200_000
        );
        // No max_results: X's usual page of 100, at $0.010 a user.
        assert_eq!(p.estimate(followers, &args(json!({}))), 1_000_000);
        let (unit, said) = p.describe(followers);
        assert_eq!(unit, "$0.01 per user");
        assert_eq!(
            said.as_deref(),
            Some("Costs $0.01 per user returned: up to $10.00 for 1000.")
        );
        let answer =
            json!({"data": [{"id": "1"}, {"id": "2"}], "includes": {"tweets": [{"id": "9"}]}});
        let priced = p.priced(followers, &args(json!({})));
        assert_eq!(p.cost(&priced, 200, &answer), 2 * 10_000 + 5_000);

        assert_eq!(
            p.estimate(spec("getUsersById"), &args(json!({"id": "1"}))),
            10_000
        );
    }
}
