//! Measuring stages: EXPLAIN comparisons, RLS overhead, partitioned analytics, load.

pub(crate) mod engine;
pub mod exec;
pub mod explain;
pub mod load;
pub(crate) mod monitoring;
pub(crate) mod ops;
pub mod partitions;
pub(crate) mod rls;
pub mod server_view;
pub(crate) mod settings;

/// A stage that failed part-way (the server went away) and kept what it measured: the
/// command records `section` in the partial results, then reports `cause`.
pub struct Partial<T> {
    pub section: T,
    pub cause: anyhow::Error,
}

impl<T> std::fmt::Display for Partial<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:#}", self.cause)
    }
}

impl<T> std::fmt::Debug for Partial<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:?}", self.cause)
    }
}

impl<T> std::error::Error for Partial<T> {}

/// After a statement failed: does every connection still answer? If not, the server (or
/// the network to it) went away, and the stage stops with one error instead of one per query.
pub(crate) async fn server_still_there(
    conns: &mut [&mut sqlx::postgres::PgConnection],
) -> anyhow::Result<()> {
    use sqlx::Connection;
    for c in conns.iter_mut() {
        if let Err(e) = c.ping().await {
            anyhow::bail!("the server went away: {e}");
        }
    }
    Ok(())
}
