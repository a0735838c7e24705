//! Emulates how PostgREST serves a Supabase request: one transaction, `role` and
//! `request.jwt.claims` set transaction-locally, then the query. Connecting as a superuser
//! or as the table owner would measure no RLS at all.

use crate::internal_sql::{q, sql};
use crate::pooler::Protocol;
use anyhow::Result;
use sqlx::postgres::PgConnection;
use uuid::Uuid;

/// Who a request runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// An app user, under RLS.
    User(Uuid),
    /// The backend (BYPASSRLS).
    Service,
    /// Not signed in.
    Anon,
    /// `authenticated` with no claims at all: a misconfigured client; sees nothing.
    NoClaims,
}

impl Principal {
    pub fn role(&self) -> &'static str {
        match self {
            Principal::User(_) | Principal::NoClaims => "authenticated",
            Principal::Service => "service_role",
            Principal::Anon => "anon",
        }
    }

    /// The claims PostgREST would set from the JWT.
    pub fn claims(&self) -> String {
        match self {
            Principal::User(id) => serde_json::json!({"sub": id.to_string(), "role": "authenticated", "aud": "authenticated"}).to_string(),
            Principal::Service => serde_json::json!({"role": "service_role"}).to_string(),
            Principal::Anon => serde_json::json!({"role": "anon"}).to_string(),
            Principal::NoClaims => String::new(),
        }
    }
}

/// Runs the request set-up inside the caller's open transaction.
pub async fn begin_request(conn: &mut PgConnection, who: &Principal) -> Result<()> {
    begin_request_with(conn, who, Protocol::Prepared).await
}

/// The same, in the statement protocol of the connection (unnamed through a transaction pooler).
pub async fn begin_request_with(
    conn: &mut PgConnection,
    who: &Principal,
    protocol: Protocol,
) -> Result<()> {
    sqlx::query(sql(&q().begin_request))
        .persistent(protocol.persistent())
        .bind(who.role())
        .bind(who.claims())
        .execute(&mut *conn)
        .await?;
    Ok(())
}
