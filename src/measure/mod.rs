//! Measuring stages: EXPLAIN comparisons, RLS overhead, partitioned analytics, load.

pub mod engine;
pub mod exec;
pub mod explain;
pub mod load;
pub mod ops;
pub mod partitions;
pub mod rls;
pub mod server_view;
