//! Measuring stages: EXPLAIN comparisons, RLS overhead, partitioned analytics, load.

pub mod latency;
pub mod load;
pub mod server_view;
