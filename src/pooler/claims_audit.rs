//! Claims isolation through a pooler: many clients, each request PostgREST-style (claims set
//! transaction-locally), interleaved with bare transactions that must see no claims at all.
//! A pooler multiplexes clients over fewer server connections, so a claim set for a session
//! instead of a transaction reaches whichever client gets that server connection next: the
//! bare transactions catch it. `Emulation::SessionSet` plants exactly that mistake, so the
//! audit is shown to fail when it should.

use super::{queries, Protocol};
use crate::auth::{begin_request_with, Principal};
use crate::sql_files::sql;
use anyhow::{anyhow, Result};
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{ConnectOptions, Connection};
use std::collections::{BTreeMap, BTreeSet};
use uuid::Uuid;

/// How each client sets its claims.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Emulation {
    /// `set_config(…, true)` inside the request's transaction, as storybench and PostgREST do.
    TransactionLocal,
    /// `set_config(…, false)`: claims outlive the transaction (the mistake the audit must catch).
    SessionSet,
}

/// The audit's figures, in results.json beside the pooled load.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ClaimsAudit {
    pub clients: usize,
    /// Requests (claims set) and bare transactions (no claims) run.
    pub requests: u64,
    pub bare_transactions: u64,
    /// Server backends seen, and how many of them served more than one client (the audit
    /// means something only when clients shared backends).
    pub backends: usize,
    pub shared_backends: usize,
    /// Transactions that saw claims of another request: a bare one with claims set, or a
    /// request whose `auth.uid()` was not its own user.
    pub leaks: u64,
    /// The first few leaks, for the report.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

const MAX_EXAMPLES: usize = 10;

/// Runs `clients` concurrent clients of `rounds` requests each, every request as a
/// different app user of `users`.
pub async fn run(
    options: &PgConnectOptions,
    users: &[Uuid],
    clients: usize,
    rounds: usize,
    protocol: Protocol,
    emulation: Emulation,
) -> Result<ClaimsAudit> {
    if users.len() < 2 {
        anyhow::bail!("the claims audit needs at least two app users in the dataset");
    }
    let mut tasks = tokio::task::JoinSet::new();
    for client in 0..clients {
        let (options, users) = (options.clone(), users.to_vec());
        tasks.spawn(async move {
            one_client(options, users, client, clients, rounds, protocol, emulation).await
        });
    }
    let mut audit = ClaimsAudit {
        clients,
        ..Default::default()
    };
    let mut served: BTreeMap<i32, BTreeSet<usize>> = BTreeMap::new();
    while let Some(joined) = tasks.join_next().await {
        let part = joined.map_err(|e| anyhow!("claims audit client: {e}"))??;
        audit.requests += part.requests;
        audit.bare_transactions += part.bare;
        audit.leaks += part.leaks.len() as u64;
        for l in part.leaks {
            if audit.examples.len() < MAX_EXAMPLES {
                audit.examples.push(l);
            }
        }
        for pid in part.backends {
            served.entry(pid).or_default().insert(part.client);
        }
    }
    audit.backends = served.len();
    audit.shared_backends = served.values().filter(|c| c.len() > 1).count();
    Ok(audit)
}

struct ClientPart {
    client: usize,
    requests: u64,
    bare: u64,
    leaks: Vec<String>,
    backends: BTreeSet<i32>,
}

async fn one_client(
    options: PgConnectOptions,
    users: Vec<Uuid>,
    client: usize,
    clients: usize,
    rounds: usize,
    protocol: Protocol,
    emulation: Emulation,
) -> Result<ClientPart> {
    let mut conn = options
        .connect()
        .await
        .map_err(|e| anyhow!("claims audit: connecting: {e}"))?;
    let mut part = ClientPart {
        client,
        requests: 0,
        bare: 0,
        leaks: Vec::new(),
        backends: BTreeSet::new(),
    };
    let q = queries();
    for round in 0..rounds {
        crate::interrupt::check()?;
        let user = users[(client + round * clients) % users.len()];
        // A request as `user`.
        let mut tx = conn.begin().await?;
        match emulation {
            Emulation::TransactionLocal => {
                begin_request_with(&mut tx, &Principal::User(user), protocol).await?
            }
            Emulation::SessionSet => {
                sqlx::query(sql(q.session_claims.as_str()))
                    .persistent(protocol.persistent())
                    .bind(Principal::User(user).claims())
                    .execute(&mut *tx)
                    .await?;
            }
        }
        let (uid, pid): (Option<String>, i32) = sqlx::query_as(sql(q.whoami.as_str()))
            .persistent(protocol.persistent())
            .fetch_one(&mut *tx)
            .await?;
        tx.commit().await?;
        part.requests += 1;
        part.backends.insert(pid);
        if uid.as_deref() != Some(user.to_string().as_str()) {
            part.leaks.push(format!(
                "client {client}, a request as {user}: auth.uid() was {} (backend {pid})",
                uid.as_deref().unwrap_or("NULL")
            ));
        }
        tokio::task::yield_now().await;
        // A bare transaction: no claims may be in force.
        let mut tx = conn.begin().await?;
        let (claims, own_role, pid): (String, bool, i32) =
            sqlx::query_as(sql(q.bare_claims.as_str()))
                .persistent(protocol.persistent())
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        part.bare += 1;
        part.backends.insert(pid);
        if !claims.is_empty() || !own_role {
            part.leaks.push(format!(
                "client {client}, a transaction without claims saw claims {claims:?}{} (backend {pid})",
                if own_role { "" } else { " and another role" }
            ));
        }
        tokio::task::yield_now().await;
    }
    let _ = conn.close().await;
    Ok(part)
}

/// App users to run the audit as: a few from the dataset.
pub async fn sample_users(conn: &mut PgConnection, n: i64) -> Result<Vec<Uuid>> {
    Ok(sqlx::query_scalar(sql(queries().audit_users.as_str()))
        .bind(n)
        .fetch_all(conn)
        .await?)
}
