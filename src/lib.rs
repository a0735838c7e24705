//! storybench: a load-test and benchmark harness for the InfiniteStories PostgreSQL database.
//!
//! Pipeline: cluster → schema → seed → catalog → measure → results → report / compare.
//!
//! Only what the binary (`cli::main`), the integration tests and the benches use is `pub`;
//! the rest is private to the crate, so rustc reports what nothing reaches.

// The capacity search's step closure nests async blocks deep enough for the default 128.
#![recursion_limit = "256"]

pub mod auth;
pub mod bench_support;
pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod config;
pub mod findings;
pub mod format;
pub mod latency;
pub mod measure;
pub mod params;
pub mod pg_version;
pub mod plan;
pub mod pooler;
pub mod pristine;
pub mod report;
pub mod results;
pub mod schema;
pub mod seed;
pub mod target;

mod advise;
mod compare;
mod internal_sql;
mod interrupt;
mod lock;
mod paths;
mod printer;
mod progress;
mod scale_datasets;
mod scenario;
mod sql_files;
mod sqlfile;
mod stats;
mod term;
mod units;
