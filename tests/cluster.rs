//! The embedded cluster through the CLI: start/stop round trip, auto start/stop, clear errors.

mod common;

use common::{stderr, stdout, storybench_cmd, temp_root};
use std::path::Path;

fn sb(data_dir: &Path, args: &[&str]) -> std::process::Output {
    storybench_cmd()
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn db_start_stop_round_trip_and_auto_start() {
    let root = temp_root("roundtrip");
    let data = root.join("pgdata");

    let out = sb(&data, &["db", "status"]);
    assert_eq!(
        out.status.code(),
        Some(3),
        "not initialized yet: {}",
        stdout(&out)
    );

    let out = sb(&data, &["db", "start"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let url = stdout(&out).lines().last().unwrap().to_string();
    assert!(
        url.starts_with("postgres://"),
        "the URL is the last line of stdout: {url}"
    );
    let status = sb(&data, &["db", "status"]);
    assert_eq!(status.status.code(), Some(0));
    assert!(stdout(&status).contains("running"));
    assert_eq!(stdout(&sb(&data, &["db", "url"])).trim(), url);
    // A second start is a no-op that still prints the URL.
    assert_eq!(
        stdout(&sb(&data, &["db", "start"])).lines().last().unwrap(),
        url
    );

    let out = sb(&data, &["db", "stop"]);
    assert!(out.status.success());
    assert_eq!(sb(&data, &["db", "status"]).status.code(), Some(3));

    // Any other command starts the stopped cluster and stops it again at exit.
    let out = sb(&data, &["schema", "apply", "--indexes", "tuned"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(
        sb(&data, &["db", "status"]).status.code(),
        Some(3),
        "stopped again after the command"
    );
    // ... and the schema it applied persisted in the data directory.
    let out = sb(&data, &["schema", "show"]);
    assert!(stdout(&out).contains("indexes tuned"), "{}", stdout(&out));
    // While the cluster runs (started by `db start`), commands leave it running.
    sb(&data, &["db", "start"]);
    assert!(sb(&data, &["schema", "show"]).status.success());
    assert_eq!(sb(&data, &["db", "status"]).status.code(), Some(0));
    sb(&data, &["db", "stop"]);
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn missing_binaries_say_how_to_install() {
    let root = temp_root("nobins");
    let out = storybench_cmd()
        .env("PG_BIN", "/nonexistent/bin")
        .arg("--data-dir")
        .arg(root.join("d"))
        .args(["db", "start"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("apt-get install postgresql"),
        "{}",
        stderr(&out)
    );
    assert!(!root.join("d").exists(), "nothing created");
}

#[test]
fn unusable_data_directories_are_refused() {
    let root = temp_root("baddir");
    // Not empty and not a cluster.
    let junk = root.join("junk");
    std::fs::create_dir_all(&junk).unwrap();
    std::fs::write(junk.join("notes.txt"), "mine").unwrap();
    let out = sb(&junk, &["db", "start"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not empty"), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(junk.join("notes.txt")).unwrap(),
        "mine"
    );
    // A file where the directory should be.
    let file = root.join("file");
    std::fs::write(&file, "x").unwrap();
    let out = sb(&file, &["db", "start"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not a directory"), "{}", stderr(&out));
    // A cluster made by another major version.
    let old = root.join("old");
    std::fs::create_dir_all(&old).unwrap();
    std::fs::write(old.join("PG_VERSION"), "9\n").unwrap();
    let out = sb(&old, &["db", "start"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains("made by PostgreSQL 9"),
        "{}",
        stderr(&out)
    );
    std::fs::remove_dir_all(&root).ok();
}

#[test]
fn an_explicit_port_that_is_taken_is_a_clear_error() {
    let root = temp_root("port");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port().to_string();
    let out = sb(&root.join("pgdata"), &["--port", &port, "db", "start"]);
    assert!(!out.status.success());
    assert!(
        stderr(&out).contains(&format!("port {port} is taken")),
        "{}",
        stderr(&out)
    );
    sb(&root.join("pgdata"), &["db", "stop"]);
    std::fs::remove_dir_all(&root).ok();
}

/// Every entry under `dir`: path, owner, group, mode and a hash of the contents.
fn listing(dir: &Path) -> Vec<(String, u32, u32, u32, u64)> {
    use std::hash::{Hash, Hasher};
    use std::os::unix::fs::MetadataExt;
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let meta = std::fs::symlink_metadata(&p).unwrap();
        let mut h = std::collections::hash_map::DefaultHasher::new();
        if meta.is_dir() {
            for e in std::fs::read_dir(&p).unwrap() {
                stack.push(e.unwrap().path());
            }
        } else if meta.is_file() {
            std::fs::read(&p).unwrap().hash(&mut h);
        }
        let rel = p.strip_prefix(dir).unwrap().display().to_string();
        out.push((rel, meta.uid(), meta.gid(), meta.mode(), h.finish()));
    }
    out.sort();
    out
}

#[test]
fn a_data_directory_owned_by_another_user_is_refused_untouched() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: handing a directory to another user needs root");
        return;
    }
    let root = temp_root("owner");
    // A real cluster made by storybench, stopped, then handed to another OS user.
    let data = root.join("pgdata");
    assert!(sb(&data, &["db", "start"]).status.success());
    assert!(sb(&data, &["db", "stop"]).status.success());
    let chown = std::process::Command::new("chown")
        .args(["-R", "nobody:nogroup"])
        .arg(&data)
        .status()
        .unwrap();
    assert!(chown.success());
    // And an empty directory of that user.
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    nix::unistd::chown(&empty, Some(65534.into()), Some(65534.into())).unwrap();

    for (dir, cluster) in [(&data, true), (&empty, false)] {
        let before = listing(dir);
        assert_eq!(before[0].1, 65534, "owned by nobody");
        for args in [&["db", "start"][..], &["schema", "show"]] {
            let out = sb(dir, args);
            let err = stderr(&out);
            assert!(!out.status.success(), "{args:?} must refuse: {err}");
            assert!(
                err.contains("owned by the OS user nobody (uid 65534)")
                    && err.contains("must run as postgres")
                    && err.contains("--data-dir")
                    && err.contains("will not change the owner"),
                "{args:?}: {err}"
            );
            assert_eq!(
                err.contains("(a PostgreSQL cluster)"),
                cluster,
                "says what it found: {err}"
            );
            assert!(!err.contains("panicked"), "{err}");
            assert_eq!(before, listing(dir), "{args:?} changed {}", dir.display());
        }
        assert!(!dir.join("postmaster.pid").exists(), "no server started");
    }
    std::fs::remove_dir_all(&root).ok();
}
