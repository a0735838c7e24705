//! storybench: a load-test and benchmark harness for the InfiniteStories PostgreSQL database.
//!
//! Pipeline: cluster → schema → seed → catalog → measure → results → report / compare.

pub mod advise;
pub mod auth;
pub mod bench_support;
pub mod catalog;
pub mod cli;
pub mod cluster;
pub mod compare;
pub mod config;
pub mod findings;
pub mod format;
pub mod internal_sql;
pub mod interrupt;
pub mod latency;
pub mod lock;
pub mod measure;
pub mod params;
pub mod paths;
pub mod pg_version;
pub mod plan;
pub mod pooler;
pub mod printer;
pub mod pristine;
pub mod progress;
pub mod report;
pub mod results;
pub mod scale_datasets;
pub mod scenario;
pub mod schema;
pub mod seed;
pub mod sql_files;
pub mod sqlfile;
pub mod stats;
pub mod target;
pub mod term;
pub mod units;
