//! Server settings profiles on a real server with the tiny dataset: each profile is in force
//! while it is measured (pg_settings shows it), and the server is back to its own settings
//! afterwards — after a clean run, after an error mid-profile and after Ctrl-C mid-profile.

mod common;

use common::{connect, stderr, storybench_cmd, temp_root, TestDb, Watched, ANCHOR};
use nix::sys::signal::Signal;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

fn results(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("results.json")).unwrap()).unwrap()
}

/// A private embedded cluster (its own data directory) seeded with tiny, stopped again.
fn embedded_tiny(tag: &str) -> (PathBuf, PathBuf) {
    let root = temp_root(tag);
    let data = root.join("pgdata");
    let out = storybench_cmd()
        .arg("--data-dir")
        .arg(&data)
        .args(["seed", "--profile", "tiny", "--anchor", ANCHOR, "--out"])
        .arg(root.join("seed"))
        .output()
        .unwrap();
    assert!(out.status.success(), "seed: {}", stderr(&out));
    (root, data)
}

fn setting<'a>(rows: &'a Value, name: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} in {rows}"))
}

/// The server's own settings after the command: started again, pg_settings read directly.
async fn own_settings_now(data: &Path) -> Vec<(String, String, String)> {
    let up = storybench_cmd()
        .arg("--data-dir")
        .arg(data)
        .args(["db", "start"])
        .output()
        .unwrap();
    assert!(up.status.success(), "db start: {}", stderr(&up));
    let url = String::from_utf8_lossy(&up.stdout)
        .lines()
        .last()
        .unwrap()
        .to_string();
    let mut c = connect(&url).await;
    let rows: Vec<(String, String, String)> = sqlx::query_as(
        "SELECT name, setting, source FROM pg_settings WHERE name IN \
         ('shared_buffers','max_connections','work_mem','effective_cache_size') ORDER BY name",
    )
    .fetch_all(&mut c)
    .await
    .unwrap();
    drop(c);
    let down = storybench_cmd()
        .arg("--data-dir")
        .arg(data)
        .args(["db", "stop"])
        .output()
        .unwrap();
    assert!(down.status.success(), "db stop: {}", stderr(&down));
    rows
}

#[tokio::test]
async fn each_profile_is_applied_and_the_server_is_back_to_its_own_settings() {
    let (root, data) = embedded_tiny("settings_all");
    let conf_before = std::fs::read_to_string(data.join("storybench.conf")).unwrap();
    let out_dir = root.join("settings");
    let out = storybench_cmd()
        .arg("--data-dir")
        .arg(&data)
        .args([
            "settings",
            "--quick",
            "--profiles",
            "default,doc,tuned",
            "--out",
        ])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let r = results(&out_dir);
    let s = &r["settings"];
    assert_eq!(s["applied"], "config_file_restart");
    let profiles = s["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 3);
    // shared_buffers in force, in 8kB pages: default 128MB, doc 256MB, tuned 25 % of RAM.
    let ram_mb = s["machine"]["ram_bytes"].as_u64().unwrap() / (1024 * 1024);
    let tuned_pages = (ram_mb / 4).clamp(128, 8192) * 128;
    for (p, pages, conns) in [
        (&profiles[0], 16384, "100".to_string()),
        (&profiles[1], 32768, "200".to_string()),
        (&profiles[2], tuned_pages, {
            let cores = s["machine"]["cores"].as_u64().unwrap();
            (cores * 25).clamp(100, 500).to_string()
        }),
    ] {
        let sb = setting(&p["in_force"], "shared_buffers");
        assert_eq!(sb["setting"], pages.to_string(), "{p}");
        assert_eq!(setting(&p["in_force"], "max_connections")["setting"], conns);
        assert!(p["requested"]
            .as_array()
            .unwrap()
            .iter()
            .all(|q| q["applied"] == true));
        let analytics = p["analytics"].as_array().unwrap();
        assert!(!analytics.is_empty(), "{p}");
        assert!(analytics
            .iter()
            .all(|a| a["p50"]["estimate"].as_f64().unwrap() > 0.0));
        assert!(analytics
            .iter()
            .all(|a| a["work"]["shared_hit"].is_number()));
        assert!(p["capacity"]["steps"]
            .as_array()
            .is_some_and(|s| !s.is_empty()));
    }
    // Ratios against the first profile carry an interval.
    assert!(profiles[1]["analytics"][0]["p50_ratio"]["low"].is_number());
    assert_eq!(s["restored"], true);
    assert_eq!(s["own_before"], s["own_after"]);
    // The doc's 256MB came from storybench.conf before; so it does after.
    assert_eq!(
        setting(&s["own_after"], "shared_buffers")["setting"],
        "32768"
    );
    assert!(!data.join("storybench_profile.conf").exists());
    assert_eq!(
        std::fs::read_to_string(data.join("storybench.conf")).unwrap(),
        conf_before
    );
    let now = own_settings_now(&data).await;
    assert!(now.contains(&(
        "shared_buffers".into(),
        "32768".into(),
        "configuration file".into()
    )));
    let html = std::fs::read_to_string(out_dir.join("report.html")).unwrap();
    assert!(html.contains("id=\"settings\""), "no settings section");
}

#[tokio::test]
async fn ctrl_c_mid_profile_restores_the_servers_own_settings() {
    let (root, data) = embedded_tiny("settings_sigint");
    let conf_before = std::fs::read_to_string(data.join("storybench.conf")).unwrap();
    let own_before = own_settings_now(&data).await;
    let out_dir = root.join("settings");
    let mut cmd = storybench_cmd();
    cmd.arg("--data-dir")
        .arg(&data)
        .args(["settings", "--quick", "--profiles", "default,doc", "--out"])
        .arg(&out_dir);
    let mut w = Watched::spawn(cmd);
    w.wait_for("settings: profile default", Duration::from_secs(120));
    // Mid-profile: in force (its file written, the server restarted), being measured.
    let started = std::time::Instant::now();
    while !data.join("storybench_profile.conf").exists() {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "{}",
            w.stderr()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.signal(Signal::SIGINT);
    let (status, _, err) = w.wait_exit(Duration::from_secs(60));
    assert_eq!(status.code(), Some(130), "{err}");
    let r = results(&out_dir);
    assert_eq!(r["status"], "interrupted");
    assert_eq!(r["settings"]["restored"], true, "{}", r["settings"]);
    assert!(!data.join("storybench_profile.conf").exists());
    assert_eq!(
        std::fs::read_to_string(data.join("storybench.conf")).unwrap(),
        conf_before
    );
    assert_eq!(own_settings_now(&data).await, own_before);
}

#[tokio::test]
async fn an_error_mid_profile_on_an_external_server_resets_alter_system() {
    let db = TestDb::new("settings_err").await;
    let root = temp_root("settings_err");
    common::seed_tiny(&db, &root.join("seed"));
    let read = async || -> Vec<(String, String, String)> {
        let mut c = connect(&common::url_for("postgres")).await;
        sqlx::query_as(
            "SELECT name, setting, source FROM pg_settings WHERE name IN \
             ('work_mem','effective_cache_size') ORDER BY name",
        )
        .fetch_all(&mut c)
        .await
        .unwrap()
    };
    let before = read().await;
    // Without --alter-system an external server is refused, changing nothing.
    let refused = db.storybench(&["settings", "--quick", "--profiles", "doc"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("--alter-system"),
        "{}",
        stderr(&refused)
    );
    // A session held on the dataset: the profile's pristine copy cannot be made (the
    // template is busy), an error after ALTER SYSTEM applied the profile.
    let holder = db.conn().await;
    let out_dir = root.join("settings");
    let out = db.storybench(&[
        "settings",
        "--quick",
        "--alter-system",
        "--profiles",
        "doc",
        "--out",
        &out_dir.to_string_lossy(),
    ]);
    drop(holder);
    assert!(!out.status.success(), "{}", stderr(&out));
    let r = results(&out_dir);
    let s = &r["settings"];
    assert_eq!(s["applied"], "alter_system_reload");
    let p = &s["profiles"][0];
    assert!(p["error"].is_string(), "{p}");
    // Applied while it ran: work_mem 4MB (4096 kB) reloads; shared_buffers needs a restart.
    assert_eq!(
        setting(&p["in_force"], "effective_cache_size")["setting"],
        "131072"
    );
    let skipped: Vec<&Value> = p["requested"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|q| q["skipped"] == "needs_restart")
        .collect();
    assert_eq!(skipped.len(), 2, "{p}");
    assert_eq!(s["restored"], true);
    assert_eq!(read().await, before);
    let mut c = connect(&common::url_for("postgres")).await;
    let auto: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_file_settings WHERE sourcefile LIKE '%postgresql.auto.conf'",
    )
    .fetch_one(&mut c)
    .await
    .unwrap();
    assert_eq!(auto, 0, "ALTER SYSTEM values left behind");
}

#[tokio::test]
async fn wal_archiving_on_then_off_leaves_the_clusters_config_as_before() {
    let (root, data) = embedded_tiny("settings_wal");
    let conf_before = std::fs::read_to_string(data.join("storybench.conf")).unwrap();
    let auto_before = std::fs::read_to_string(data.join("postgresql.auto.conf")).unwrap();
    let out_dir = root.join("wal");
    let out = storybench_cmd()
        .arg("--data-dir")
        .arg(&data)
        .args(["wal-archive", "--quick", "--rate", "40", "--out"])
        .arg(&out_dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let s = &results(&out_dir)["wal_archive"];
    assert_eq!(setting(&s["in_force"], "archive_mode")["setting"], "on");
    assert_eq!(setting(&s["in_force"], "wal_level")["setting"], "replica");
    assert_eq!(setting(&s["own_after"], "archive_mode")["setting"], "off");
    assert_eq!(s["own_before"], s["own_after"]);
    assert_eq!(s["restored"], true);
    assert!(s["archived_segments"].as_i64().unwrap() >= 1, "{s}");
    assert!(s["archived_bytes"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["archive_failures"], 0);
    let off = s["off"].as_array().unwrap();
    assert!(!off.is_empty());
    assert!(off
        .iter()
        .all(|a| a["work"]["wal_bytes"].as_f64().unwrap() > 0.0));
    // The archive per hour at launch_mix's write statements at 40/s (its rate, as `ops`
    // loads it): create_story runs in 10 % of the arrivals; the total is their WAL × rate.
    assert_eq!(s["scenario"], "launch_mix", "{s}");
    let writes = s["statements"].as_array().unwrap();
    let story = writes
        .iter()
        .find(|w| w["statement"] == "create_story")
        .unwrap();
    assert!(
        (story["writes_per_second"].as_f64().unwrap() - 4.0).abs() < 1e-9,
        "{s}"
    );
    let per_hour: f64 = writes
        .iter()
        .map(|w| {
            w["wal_bytes_per_write"].as_f64().unwrap() * w["writes_per_second"].as_f64().unwrap()
        })
        .sum::<f64>()
        * 3600.0;
    let got = s["archive_bytes_per_hour"].as_f64().unwrap();
    assert!(
        got > 0.0 && (got - per_hour).abs() <= 1e-6 * per_hour,
        "{s}"
    );
    assert!(!data.join("storybench_wal_archive").exists());
    assert!(!data.join("storybench_profile.conf").exists());
    assert_eq!(
        std::fs::read_to_string(data.join("storybench.conf")).unwrap(),
        conf_before
    );
    assert_eq!(
        std::fs::read_to_string(data.join("postgresql.auto.conf")).unwrap(),
        auto_before
    );
    // An external server is refused with a clear message.
    let db = TestDb::new("settings_wal_ext").await;
    let refused = db.storybench(&["wal-archive", "--quick"]);
    assert!(!refused.status.success());
    assert!(
        stderr(&refused).contains("embedded cluster only"),
        "{}",
        stderr(&refused)
    );
}
