//! Two storybench processes on one data directory or one database (issue 20): the second
//! refuses at once with one line naming the holder, changes nothing, and works once the
//! first is done.

mod common;

use common::{stderr, storybench_cmd, temp_root, TestDb, Watched};
use nix::sys::signal::Signal;
use std::time::Duration;

fn long_load(cmd: &mut std::process::Command) {
    cmd.args([
        "load",
        "--sql",
        "SELECT 1",
        "--clients",
        "1",
        "--duration",
        "120s",
        "--warmup",
        "0s",
    ]);
}

/// The refusal is one `error:` line that names the holder's command and pid.
fn assert_names_holder(err: &str, holder_pid: u32) {
    let lines: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(lines.len(), 1, "one error line: {err}");
    let line = lines[0];
    assert!(
        line.contains("in use by another storybench load")
            && line.contains(&format!("pid {holder_pid}")),
        "names the holder: {line}"
    );
}

#[test]
fn a_second_process_on_one_data_directory_refuses_naming_the_first() {
    let root = temp_root("lockdir");
    let data = root.join("pgdata");
    let mut cmd = storybench_cmd();
    cmd.arg("--data-dir").arg(&data);
    long_load(&mut cmd);
    cmd.arg("--out").arg(root.join("first"));
    let mut first = Watched::spawn(cmd);
    first.wait_for("▶ load", Duration::from_secs(120));
    let holder = first.child.id();

    let second = storybench_cmd()
        .arg("--data-dir")
        .arg(&data)
        .args(["explain", "--out"])
        .arg(root.join("second"))
        .output()
        .unwrap();
    assert!(!second.status.success());
    assert_names_holder(&stderr(&second), holder);
    assert!(
        !root.join("second").join("results.json").exists(),
        "the refused command measured nothing"
    );

    first.signal(Signal::SIGINT);
    let (status, _, err) = first.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(130), "{err}");
    assert!(
        common::stdout(
            &storybench_cmd()
                .arg("--data-dir")
                .arg(&data)
                .args(["schema", "show"])
                .output()
                .unwrap()
        )
        .contains("no storybench schema"),
        "the lock is released with its holder"
    );
}

#[tokio::test]
async fn a_second_process_on_one_database_refuses_and_changes_nothing() {
    let db = TestDb::new("lockdb").await;
    let root = temp_root("lockdb");
    let mut cmd = storybench_cmd();
    cmd.arg("--database-url").arg(&db.url);
    long_load(&mut cmd);
    cmd.arg("--out").arg(root.join("first"));
    let mut first = Watched::spawn(cmd);
    first.wait_for("▶ load", Duration::from_secs(60));
    let holder = first.child.id();

    let before = db.dump();
    let second = db.storybench(&[
        "seed",
        "--profile",
        "tiny",
        "--anchor",
        common::ANCHOR,
        "--out",
        &root.join("second").to_string_lossy(),
    ]);
    assert!(!second.status.success());
    assert_names_holder(&stderr(&second), holder);
    assert_eq!(before, db.dump(), "the refused seed changed nothing");

    first.signal(Signal::SIGTERM);
    let (status, _, err) = first.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(130), "{err}");
    let again = db.storybench(&["schema", "show"]);
    assert!(again.status.success(), "free again: {}", stderr(&again));
}
