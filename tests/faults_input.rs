//! Bad input that only shows on some set-ups (issue 9, continued from tests/faults.rs): a
//! read-only --out when running as root, and malformed SQL in a scenario's extra catalog.

mod common;

use common::{stderr, stdout, temp_root, TestDb};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// The unprivileged OS user the read-only check runs as when the tests run as root.
const UNPRIVILEGED: &str = "nobody";

/// The test database over TCP: any OS user can reach it (the unix socket lives in the
/// postgres-owned data directory), and the test cluster trusts 127.0.0.1.
fn tcp_url(db: &TestDb) -> String {
    let mut url = url::Url::parse(&db.url).unwrap();
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_query(None);
    url.to_string()
}

/// A copy of the binary and the project files in a world-readable directory: the checkout
/// may sit under a directory other users cannot enter (a CI clone in a 0700 temp dir).
fn world_readable_install(root: &Path) -> std::path::PathBuf {
    let home = root.join("home");
    std::fs::create_dir_all(&home).unwrap();
    let project = Path::new(env!("CARGO_MANIFEST_DIR"));
    let status = Command::new("cp")
        .arg("-r")
        .args(["schema", "seed", "scenarios"].map(|d| project.join(d)))
        .arg(&home)
        .status()
        .unwrap();
    assert!(status.success(), "copying the project files");
    std::fs::copy(env!("CARGO_BIN_EXE_storybench"), home.join("storybench")).unwrap();
    let status = Command::new("chmod")
        .args(["-R", "a+rX"])
        .arg(&home)
        .status()
        .unwrap();
    assert!(status.success(), "making the copy world-readable");
    home
}

/// storybench (the copy in `home`) as `nobody` when we are root (mode bits bind it), else
/// as ourselves.
fn storybench_unprivileged(home: &Path, args: &[&str]) -> Output {
    let bin = home.join("storybench");
    let mut cmd = if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", UNPRIVILEGED, "--"]).arg(&bin);
        c
    } else {
        Command::new(&bin)
    };
    cmd.args(args)
        .current_dir(home)
        .env("STORYBENCH_HOME", home)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

/// Whether the user the check runs as passes `test FLAG path`.
fn unprivileged_test(flag: &str, path: &Path) -> bool {
    let mut cmd = if nix::unistd::geteuid().is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", UNPRIVILEGED, "--", "test"]);
        c
    } else {
        Command::new("test")
    };
    cmd.arg(flag).arg(path).status().unwrap().success()
}

#[tokio::test]
async fn a_read_only_out_is_refused_even_when_running_as_root() {
    let db = TestDb::new("readonly").await;
    let url = tcp_url(&db);
    let before = db.dump();
    let root = temp_root("readonly");
    let ro = root.join("ro");
    std::fs::create_dir_all(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let rw = root.join("rw");
    std::fs::create_dir_all(&rw).unwrap();
    std::fs::set_permissions(&rw, std::fs::Permissions::from_mode(0o777)).unwrap();
    // Preconditions, so a pass means something: that user can run storybench and read the
    // project, and really cannot write into the read-only directory.
    let home = world_readable_install(&root);
    let bin = home.join("storybench");
    assert!(
        unprivileged_test("-x", &bin),
        "{UNPRIVILEGED} cannot run {}",
        bin.display()
    );
    assert!(
        unprivileged_test("-r", &home.join("scenarios/queries.toml")),
        "{UNPRIVILEGED} cannot read the project at {}",
        home.display()
    );
    assert!(
        !unprivileged_test("-w", &ro),
        "the directory is not read-only for that user"
    );

    let run = |out: &Path| {
        storybench_unprivileged(
            &home,
            &[
                "--database-url",
                &url,
                "load",
                "--sql",
                "SELECT 1",
                "--duration",
                "1s",
                "--warmup",
                "0s",
                "--out",
                out.to_str().unwrap(),
            ],
        )
    };
    let out = run(&ro);
    let err = stderr(&out);
    assert!(!out.status.success(), "a read-only --out must fail: {err}");
    assert_eq!(out.status.code(), Some(1));
    assert!(err.contains("not writable"), "{err}");
    assert!(
        err.contains(ro.to_str().unwrap()),
        "names the directory: {err}"
    );
    assert_eq!(err.matches("error:").count(), 1, "one message: {err}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(
        !err.contains("▶ load"),
        "refused before anything was measured: {err}"
    );
    assert_eq!(
        std::fs::read_dir(&ro).unwrap().count(),
        0,
        "nothing written"
    );
    assert_eq!(before, db.dump(), "the database is unchanged");

    // The same user and command with a writable --out works: the refusal was the directory.
    let ok = run(&rw);
    assert!(ok.status.success(), "{}", stderr(&ok));
    assert!(rw.join("results.json").is_file(), "{}", stdout(&ok));
}

/// A scenario with its own catalog file whose one query does not parse.
fn broken_scenario(dir: &Path) -> (std::path::PathBuf, usize) {
    let extra = "# Extra catalog for a test.\n\n\
                 [[query]]\n\
                 name = \"broken_probe\"\n\
                 description = \"does not parse\"\n\
                 role = \"service\"\n\
                 kind = \"read\"\n\
                 tags = [\"calibration\"]\n\
                 params = []\n\
                 sql = \"SELEC 1 FROM\"\n";
    std::fs::write(dir.join("broken_queries.toml"), extra).unwrap();
    let scenario = "description = \"uses a broken extra query\"\n\
                    principal = \"direct\"\n\
                    queries = \"broken_queries.toml\"\n\n\
                    [[transaction]]\n\
                    name = \"probe\"\n\
                    weight = 1\n\n\
                    [[transaction.step]]\n\
                    query = \"broken_probe\"\n";
    let path = dir.join("broken.toml");
    std::fs::write(&path, scenario).unwrap();
    // Line of the `[[query]]` header; the sql key is 7 lines below.
    (path, 3)
}

#[tokio::test]
async fn malformed_sql_in_a_scenario_catalog_fails_before_any_load_naming_file_line_and_key() {
    let db = TestDb::new("badscen").await;
    let before = db.dump();
    let dir = temp_root("badscen");
    let (scenario, header) = broken_scenario(&dir);
    let extra = dir.join("broken_queries.toml");
    let s = scenario.to_str().unwrap();
    for (command, args) in [
        (
            "load",
            vec![
                "load",
                "--scenario",
                s,
                "--duration",
                "1s",
                "--warmup",
                "0s",
            ],
        ),
        (
            "capacity",
            vec![
                "capacity",
                "--scenario",
                s,
                "--step-duration",
                "1s",
                "--max-steps",
                "1",
            ],
        ),
    ] {
        let out_dir = dir.join(command);
        let mut args = args.clone();
        args.extend(["--out", out_dir.to_str().unwrap()]);
        let out = db.storybench(&args);
        let err = stderr(&out);
        assert!(!out.status.success(), "{command} must fail: {err}");
        assert!(!err.contains("panicked"), "{err}");
        assert_eq!(err.matches("error:").count(), 1, "one message: {err}");
        let marker = format!("{}:", extra.display());
        let at = err
            .find(&marker)
            .unwrap_or_else(|| panic!("{command}: names the extra catalog file: {err}"))
            + marker.len();
        let line: usize = err[at..]
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .unwrap();
        assert!(
            (header..=header + 7).contains(&line),
            "{command}: line {line} is the broken entry (lines {header}–{}): {err}",
            header + 7
        );
        for needle in ["key sql", "broken_probe", "syntax error", s] {
            assert!(
                err.contains(needle),
                "{command}: mentions {needle:?}: {err}"
            );
        }
        // Nothing ran: no load stage started and the results say the run failed.
        assert!(!err.contains(&format!("▶ {command}")), "{command}: {err}");
        let r: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(out_dir.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(r["status"], "failed");
        assert!(
            r["stages"].as_array().unwrap().is_empty(),
            "{}",
            r["stages"]
        );
        assert!(r.get(command).is_none(), "no {command} section");
    }
    assert_eq!(before, db.dump(), "nothing changed");
}
