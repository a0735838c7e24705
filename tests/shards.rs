//! A sharded load: three shard processes against one server, started together, merged
//! exactly (the merged count is the sum, the merged percentiles those of the added
//! histograms), and merges that must not happen (another configuration, a duplicate shard)
//! refused with exit 2.

mod common;

use common::{seed_tiny, stderr, storybench_cmd, temp_root, TestDb};
use serde_json::Value;
use std::path::Path;
use storybench::latency::Latency;

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

fn merge(args: &[&Path], out: &Path) -> std::process::Output {
    let mut cmd = storybench_cmd();
    cmd.arg("merge");
    for a in args {
        cmd.arg(a);
    }
    cmd.arg("--out").arg(out).output().unwrap()
}

#[tokio::test]
async fn three_shards_merge_exactly_and_mismatches_are_refused() {
    let db = TestDb::new("shards").await;
    let root = temp_root("shards");
    seed_tiny(&db, &root.join("seed"));
    // Far enough ahead for three processes to start and shard 0 to make the copy.
    let start = chrono::Utc::now().timestamp() + 12;
    let dirs: Vec<_> = (0..3).map(|i| root.join(format!("shard-{i}"))).collect();
    let children: Vec<_> = (0..3)
        .map(|i| {
            storybench_cmd()
                .args(["--database-url", &db.url, "load", "--scenario", "bedtime"])
                .args([
                    "--rate",
                    "60",
                    "--users",
                    "6",
                    "--duration",
                    "4s",
                    "--warmup",
                    "0s",
                ])
                .args([
                    "--shard",
                    &format!("{i}/3"),
                    "--start-at",
                    &start.to_string(),
                ])
                .arg("--out")
                .arg(&dirs[i])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let shards: Vec<Value> = dirs.iter().map(|d| results(d)).collect();
    for (i, s) in shards.iter().enumerate() {
        assert_eq!(s["load"]["shard"]["index"], i);
        assert!((s["load"]["shape"]["rate"].as_f64().unwrap() - 20.0).abs() < 1e-9);
    }
    // The users connect before the shared start and begin at it: the shards' measured
    // windows start together however long each one's set-up took.
    let starts: Vec<chrono::DateTime<chrono::Utc>> = shards
        .iter()
        .map(|s| {
            s["load"]["shard"]["measure_started_at"]
                .as_str()
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    let skew = *starts.iter().max().unwrap() - *starts.iter().min().unwrap();
    assert!(skew.num_milliseconds() < 250, "measured starts {starts:?}");
    let merged_dir = root.join("merged");
    let out = merge(&[&dirs[0], &dirs[1], &dirs[2]], &merged_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = results(&merged_dir);
    let f = &m["load"]["figures"];
    let sum = |k: &str| {
        shards
            .iter()
            .map(|s| s["load"]["figures"][k].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!(f["ok"].as_u64().unwrap(), sum("ok"));
    assert_eq!(f["attempted"].as_u64().unwrap(), sum("attempted"));
    assert!(f["ok"].as_u64().unwrap() > 100, "{f}");
    // The merged percentiles are those of the shards' histograms added together.
    let mut all = Latency::new();
    for s in &shards {
        all.merge(
            &Latency::decode(
                s["load"]["figures"]["transaction_latency"]["histogram"]
                    .as_str()
                    .unwrap(),
            )
            .unwrap(),
        );
    }
    let tl = &f["transaction_latency"];
    assert_eq!(tl["count"].as_u64().unwrap(), all.count());
    for (k, p) in [("p50_ms", 50.0), ("p95_ms", 95.0), ("p99_ms", 99.0)] {
        assert_eq!(tl[k].as_f64().unwrap(), all.percentile_ms(p), "{k}");
    }
    // The per-second timeline adds up to the same count.
    let timeline_ok: u64 = f["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["ok"].as_u64().unwrap())
        .sum();
    assert_eq!(timeline_ok, f["ok"].as_u64().unwrap());
    assert_eq!(m["load"]["shape"]["rate"].as_f64().unwrap(), 60.0);
    assert_eq!(m["load"]["merged_shards"].as_array().unwrap().len(), 3);

    // The same shard twice, or a missing one: refused.
    let out = merge(&[&dirs[0], &dirs[0], &dirs[1]], &root.join("dup"));
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("duplicate shard 0"),
        "{}",
        stderr(&out)
    );
    let out = merge(&[&dirs[0], &dirs[1]], &root.join("missing"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("missing shard(s) 2 of 3"),
        "{}",
        stderr(&out)
    );
    // A shard of another configuration (here: another rate): refused, naming the option.
    let other = root.join("other");
    std::fs::create_dir_all(&other).unwrap();
    let mut changed = shards[2].clone();
    changed["config"]["rate"] = serde_json::json!(90.0);
    std::fs::write(other.join("results.json"), changed.to_string()).unwrap();
    let out = merge(&[&dirs[0], &dirs[1], &other], &root.join("mismatch"));
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("another configuration") && stderr(&out).contains("rate"),
        "{}",
        stderr(&out)
    );
    // The shared copy is gone (this test's: others run beside it in this cluster).
    assert_copy_dropped(shards[0]["load"]["shard"]["copy"].as_str().unwrap()).await;
}

async fn assert_copy_dropped(name: &str) {
    assert!(name.starts_with("sbcopy_shard_"), "{name}");
    let mut conn = common::connect(&common::url_for("postgres")).await;
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(left, 0, "the shards' shared copy {name} was left behind");
}

/// A sharded capacity search: two shard processes meet in the database after every step and
/// judge it on both shards' figures added up, so they take the same steps and reach the same
/// answer; each step's count is the sum of the shards' parts; `merge` checks they agree.
#[tokio::test]
async fn two_capacity_shards_take_the_same_steps_on_their_added_figures() {
    let db = TestDb::new("capshards").await;
    let root = temp_root("capshards");
    seed_tiny(&db, &root.join("seed"));
    let start = chrono::Utc::now().timestamp() + 12;
    let dirs: Vec<_> = (0..2).map(|i| root.join(format!("shard-{i}"))).collect();
    let children: Vec<_> = (0..2)
        .map(|i| {
            storybench_cmd()
                .args([
                    "--database-url",
                    &db.url,
                    "capacity",
                    "--scenario",
                    "bedtime",
                ])
                .args(["--slo", "p50<2s", "--start-rate", "20", "--max-rate", "40"])
                .args(["--step-duration", "2s", "--boundary-duration", "2s"])
                .args(["--max-step-duration", "4s", "--warmup", "0s"])
                .args(["--users", "4", "--repeats", "1", "--max-steps", "3"])
                .args([
                    "--shard",
                    &format!("{i}/2"),
                    "--start-at",
                    &start.to_string(),
                ])
                .arg("--out")
                .arg(&dirs[i])
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let shards: Vec<Value> = dirs.iter().map(|d| results(d)).collect();
    let steps = |s: &Value| s["capacity"]["steps"].as_array().unwrap().clone();
    let (a, b) = (steps(&shards[0]), steps(&shards[1]));
    assert!(!a.is_empty());
    assert_eq!(a.len(), b.len(), "the shards took other steps");
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x["target_rate"], y["target_rate"]);
        assert_eq!(x["passed"], y["passed"]);
        assert_eq!(x["attempted"], y["attempted"]);
        let parts: Vec<u64> = x["shard_parts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p.as_u64().unwrap())
            .collect();
        assert_eq!(parts.len(), 2);
        assert!(
            parts.iter().all(|p| *p > 0),
            "a shard ran no load: {parts:?}"
        );
        assert_eq!(parts.iter().sum::<u64>(), x["attempted"].as_u64().unwrap());
    }
    assert_eq!(
        shards[0]["capacity"]["sustainable_rate"],
        shards[1]["capacity"]["sustainable_rate"]
    );
    let merged_dir = root.join("merged");
    let out = merge(&[&dirs[0], &dirs[1]], &merged_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let m = results(&merged_dir);
    assert_eq!(m["capacity"]["merged_shards"].as_array().unwrap().len(), 2);
    assert_eq!(
        m["capacity"]["sustainable_rate"],
        shards[0]["capacity"]["sustainable_rate"]
    );
    assert_copy_dropped(shards[0]["capacity"]["shard"]["copy"].as_str().unwrap()).await;
}
