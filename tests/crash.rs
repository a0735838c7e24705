//! Crash recovery: storybench killed with SIGKILL (no handler runs, nothing is cleaned up)
//! mid-seed and mid-stage. The next `run` detects what was left, recovers and says what it
//! did: it seeds again over the unfinished dataset, and drops the pristine copies the killed
//! process left behind; it then runs to the end on a reused, verified dataset.

mod common;

use common::Watched;
use common::{connect, storybench_cmd, temp_root, TestDb, ANCHOR};
use nix::sys::signal::Signal;
use std::time::{Duration, Instant};

fn run(db: &TestDb, out: &std::path::Path) -> Watched {
    let mut cmd = storybench_cmd();
    cmd.args(["--database-url", &db.url, "run", "--quick", "--scale", "3"])
        .args(["--anchor", ANCHOR, "--out"])
        .arg(out);
    Watched::spawn(cmd)
}

async fn poll<F: std::future::Future<Output = bool>>(what: &str, mut f: impl FnMut() -> F) {
    let started = Instant::now();
    while !f().await {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no {what} within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn copies(db: &TestDb) -> i64 {
    let mut admin = connect(&common::url_for("postgres")).await;
    sqlx::query_scalar(
        "SELECT count(*) FROM pg_database d JOIN pg_shdescription s ON s.objoid = d.oid \
         WHERE d.datname LIKE 'sbcopy\\_%' AND s.description LIKE '%of ' || $1 || ' %'",
    )
    .bind(&db.name)
    .fetch_one(&mut admin)
    .await
    .unwrap()
}

#[tokio::test]
async fn killed_mid_seed_and_mid_stage_the_next_run_recovers_and_says_so() {
    let db = TestDb::new("crash").await;
    let root = temp_root("crash");

    // 1. Killed while the seed loads: the dataset is left "loading".
    let mut first = run(&db, &root.join("run1"));
    first.wait_for("▶ seed", Duration::from_secs(60));
    let url = db.url.clone();
    poll("seed in progress", || {
        let url = url.clone();
        async move {
            let mut c = connect(&url).await;
            sqlx::query_scalar::<_, String>(
                "SELECT value->>'status' FROM storybench.meta WHERE key = 'dataset'",
            )
            .fetch_optional(&mut c)
            .await
            .ok()
            .flatten()
            .is_some_and(|s| s != "complete")
        }
    })
    .await;
    first.signal(Signal::SIGKILL);
    let (status, _, _) = first.wait_exit(Duration::from_secs(10));
    assert_eq!(status.code(), None, "killed by a signal");

    // 2. The next run seeds again and says why; killed while a stage runs on its copy.
    let mut second = run(&db, &root.join("run2"));
    second.wait_for("did not finish", Duration::from_secs(60));
    second.wait_for("▶ explain", Duration::from_secs(120));
    let started = Instant::now();
    while copies(&db).await == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no pristine copy within 60 s"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    second.signal(Signal::SIGKILL);
    let (_, _, err) = second.wait_exit(Duration::from_secs(10));
    assert!(err.contains("seeding it again"), "{err}");
    assert!(
        copies(&db).await >= 1,
        "the killed run left its copy (nothing cleaned up)"
    );

    // 3. The next run drops the dead process's copies, reuses the dataset, and finishes.
    let third = run(&db, &root.join("run3"));
    let (status, _, err) = third.wait_exit(Duration::from_secs(300));
    assert!(status.success(), "{err}");
    assert!(
        err.contains("left behind by a storybench that was killed"),
        "{err}"
    );
    assert!(err.contains("reusing the dataset"), "{err}");
    assert_eq!(copies(&db).await, 0, "copies left after the run");
}
