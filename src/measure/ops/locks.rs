//! Lock waits while an operation runs, sampled from `pg_locks` / `pg_stat_activity`: who
//! waited on whom, for which lock, and for how long. A wait is one (backend, wait start);
//! its length is the longest the sampler saw it (so within one sampling period).

use super::queries;
use crate::sql_files::sql;
use serde::{Deserialize, Serialize};
use sqlx::postgres::PgConnection;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One observed lock wait, as the sampler last saw it.
#[derive(Clone, Debug)]
struct Wait {
    waited_s: f64,
    mode: String,
    object: String,
    waiter: String,
    blocked_by_operation: bool,
    blocker: String,
}

/// Lock waits grouped by who waited, on what, behind whom.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LockWaits {
    /// Samples taken, and the period between them.
    pub samples: u64,
    pub period_ms: f64,
    pub groups: Vec<LockWaitGroup>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LockWaitGroup {
    /// The waiting statement: a catalog query name when the text is one, else its start.
    pub waiter: String,
    /// `operation` when the operation's backend held the lock, else what the holder ran.
    pub blocker: String,
    pub blocked_by_operation: bool,
    pub mode: String,
    pub object: String,
    pub waits: u64,
    pub max_wait_ms: f64,
    pub total_wait_ms: f64,
}

impl LockWaits {
    /// The longest wait behind the operation, in ms (0 when nobody waited on it).
    pub fn longest_behind_operation_ms(&self) -> f64 {
        self.groups
            .iter()
            .filter(|g| g.blocked_by_operation)
            .map(|g| g.max_wait_ms)
            .fold(0.0, f64::max)
    }
}

/// Samples taken, and every wait seen, by (waiting pid, wait start in µs).
type Seen = Arc<Mutex<(u64, BTreeMap<(i32, i64), Wait>)>>;

/// Samples lock waits on its own connection until stopped.
pub struct LockSampler {
    stop: Arc<AtomicBool>,
    state: Seen,
    operation_pid: Arc<Mutex<Option<i32>>>,
    task: tokio::task::JoinHandle<()>,
    period: Duration,
}

impl LockSampler {
    /// `names`: (statement text, query name) pairs to name the app's waiting statements.
    pub fn start(mut conn: PgConnection, period: Duration, names: Vec<(String, String)>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let state: Seen = Arc::default();
        let operation_pid: Arc<Mutex<Option<i32>>> = Arc::default();
        let (s, st, op) = (stop.clone(), state.clone(), operation_pid.clone());
        let task = tokio::spawn(async move {
            while !s.load(Ordering::SeqCst) {
                type Row = (
                    i32,
                    f64,
                    f64,
                    String,
                    String,
                    String,
                    String,
                    Vec<i32>,
                    String,
                );
                if let Ok(rows) = sqlx::query_as::<_, Row>(sql(&queries().lock_waits))
                    .fetch_all(&mut conn)
                    .await
                {
                    let op_pid = *op.lock().unwrap_or_else(|e| e.into_inner());
                    let mut g = st.lock().unwrap_or_else(|e| e.into_inner());
                    g.0 += 1;
                    for (pid, start, waited, mode, object, app, query, blockers, bq) in rows {
                        let by_op = op_pid.is_some_and(|p| blockers.contains(&p));
                        let key = (pid, (start * 1e6) as i64);
                        let w = Wait {
                            waited_s: waited,
                            mode,
                            object,
                            waiter: label(&query, &app, &names),
                            blocked_by_operation: by_op,
                            blocker: if by_op {
                                "operation".into()
                            } else {
                                bq.chars().take(160).collect()
                            },
                        };
                        g.1.entry(key)
                            .and_modify(|old| {
                                if w.waited_s >= old.waited_s {
                                    *old = w.clone();
                                }
                            })
                            .or_insert(w);
                    }
                }
                tokio::time::sleep(period).await;
            }
        });
        Self {
            stop,
            state,
            operation_pid,
            task,
            period,
        }
    }

    /// The operation's backend: waits behind it are told apart.
    pub fn set_operation_pid(&self, pid: i32) {
        *self.operation_pid.lock().unwrap_or_else(|e| e.into_inner()) = Some(pid);
    }

    pub async fn finish(self) -> LockWaits {
        self.stop.store(true, Ordering::SeqCst);
        let _ = self.task.await;
        let (samples, waits) =
            std::mem::take(&mut *self.state.lock().unwrap_or_else(|e| e.into_inner()));
        let mut groups: BTreeMap<(String, String, String, String), LockWaitGroup> = BTreeMap::new();
        for w in waits.into_values() {
            let g = groups
                .entry((
                    w.waiter.clone(),
                    w.blocker.clone(),
                    w.mode.clone(),
                    w.object.clone(),
                ))
                .or_insert_with(|| LockWaitGroup {
                    waiter: w.waiter.clone(),
                    blocker: w.blocker.clone(),
                    blocked_by_operation: w.blocked_by_operation,
                    mode: w.mode.clone(),
                    object: w.object.clone(),
                    ..Default::default()
                });
            let ms = w.waited_s * 1000.0;
            g.waits += 1;
            g.max_wait_ms = g.max_wait_ms.max(ms);
            g.total_wait_ms += ms;
        }
        let mut groups: Vec<LockWaitGroup> = groups.into_values().collect();
        groups.sort_by(|a, b| b.total_wait_ms.total_cmp(&a.total_wait_ms));
        LockWaits {
            samples,
            period_ms: self.period.as_secs_f64() * 1000.0,
            groups,
        }
    }
}

/// A catalog query's name when the waiting text is one of the scenario's statements.
fn label(query: &str, app: &str, names: &[(String, String)]) -> String {
    // pg_stat_activity's text is cut at 400 characters here (and at track_activity_query_size
    // by the server): a long statement matches by its beginning.
    let q = normalize(query);
    names
        .iter()
        .find(|(text, _)| {
            let t = normalize(text);
            t == q || (q.len() >= 40 && t.starts_with(&q))
        })
        .map(|(_, n)| n.clone())
        .unwrap_or_else(|| {
            let head: String = query.split_whitespace().collect::<Vec<_>>().join(" ");
            format!("{app}: {}", head.chars().take(80).collect::<String>())
        })
}

fn normalize(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}
