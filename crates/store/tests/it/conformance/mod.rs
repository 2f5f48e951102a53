//! The behaviour every store backend must have. Each test runs against SQLite,
//! and against PostgreSQL when `XMCP_TEST_DATABASE_URL` is set (CI sets it).

mod flow;
mod grants;
mod upkeep;
mod usage;
mod users;

use flow::*;
use grants::*;
use std::sync::Arc;
use upkeep::*;
use usage::*;
use users::*;
use xmcp_crypto::token::{NewToken, TokenHash, TokenKind};
use xmcp_store::testing::TestDatabase;
use xmcp_store::*;

const NOW: i64 = 1_800_000_000;

macro_rules! conformance {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let db = xmcp_store::testing::TestDatabase::sqlite();
                    super::$name(&db).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    if xmcp_store::testing::required(
                        "XMCP_TEST_DATABASE_URL",
                        concat!("PostgreSQL conformance: ", stringify!($name)),
                    ).is_none() {
                        return;
                    }
                    let Some(db) = xmcp_store::testing::TestDatabase::postgres().await else {
                        return;
                    };
                    super::$name(&db).await;
                }
            )*
        }
    };
}

conformance!(
    clients_round_trip_and_conflict,
    code_is_redeemed_once_and_replay_names_grant,
    concurrent_code_redemption_has_one_winner,
    refresh_rotation_grace_and_reuse,
    concurrent_refresh_rotation_has_one_winner,
    pending_is_consumed_once_and_found_by_upstream_state,
    revocation_hides_tokens,
    sweep_deletes_only_expired_rows,
    upstream_tokens_upsert,
    upstream_refresh_lease_is_exclusive_and_commits_with_the_tokens,
    concurrent_upstream_leases_have_one_winner,
    users_upsert_by_subject,
    signing_keys_list_newest_first_and_retire,
    device_authorization_polls_slow_down_and_approve_once,
    device_authorization_denied_and_expired,
    local_state_round_trip,
    mcp_sessions_expire_slide_and_go_with_their_user,
    a_users_sessions_are_bounded_oldest_first,
    rate_limits_allow_a_burst_then_one_per_interval,
    concurrent_rate_takes_admit_exactly_the_burst,
    peeking_at_a_rate_counts_nothing,
    admin_lists_and_deletes,
    spend_is_held_against_every_cap_and_settled,
    concurrent_holds_never_pass_a_cap,
    audit_lists_and_sums_usage_and_is_swept,
    an_idempotency_key_is_claimed_once_and_keeps_its_result,
    sealed_values_are_listed_and_replaced_only_where_unchanged,
);

fn hash() -> TokenHash {
    NewToken::generate(TokenKind::AccessToken).hash().clone()
}

async fn user(store: &Arc<dyn Store>, name: &str) -> User {
    store
        .upsert_user(
            &UserIdentity {
                subject: format!("local:{name}"),
                username: Some(name.into()),
                display_name: None,
            },
            NOW,
        )
        .await
        .unwrap()
}

async fn code(store: &Arc<dyn Store>, user_id: &str, client_id: &str) -> TokenHash {
    let h = hash();
    store
        .insert_code(&AuthorizationCode {
            hash: h.clone(),
            kind: CodeKind::Redirect,
            client_id: client_id.into(),
            redirect_uri: "http://127.0.0.1/cb".into(),
            redirect_uri_explicit: true,
            code_challenge: "c".into(),
            resource: "https://mcp.example/mcp".into(),
            scope: "mcp".into(),
            user_id: user_id.into(),
            created_at: NOW,
            expires_at: NOW + 60,
            used_at: None,
        })
        .await
        .unwrap();
    h
}

fn grant(user_id: &str, client_id: &str) -> Grant {
    Grant {
        id: format!("gr_{}", &hash().as_str()[..16]),
        user_id: user_id.into(),
        client_id: client_id.into(),
        scope: "mcp".into(),
        resource: "https://mcp.example/mcp".into(),
        created_at: NOW,
        revoked_at: None,
    }
}

fn pair(access_ttl: i64) -> TokenPair {
    TokenPair {
        access: hash(),
        access_expires_at: NOW + access_ttl,
        refresh: Some(hash()),
        refresh_expires_at: NOW + 86_400,
    }
}

/// A user, a code, and the grant issued from it.
async fn issued(store: &Arc<dyn Store>) -> (Grant, TokenPair) {
    let u = user(store, "alice").await;
    let c = code(store, &u.id, "client-1").await;
    let g = grant(&u.id, "client-1");
    let p = pair(3600);
    assert_eq!(
        store.issue_from_code(&c, NOW, &g, &p).await.unwrap(),
        CodeRedemption::Issued
    );
    (g, p)
}
