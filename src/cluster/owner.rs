//! Who owns the embedded cluster's data directory, checked before anything touches it.

use super::{is_root, SUPERUSER};
use anyhow::{anyhow, bail, Context, Result};
use std::path::Path;

/// Refuses, up front and without touching anything, a data directory the server could not
/// run on: PostgreSQL only starts on a data directory owned by the user it runs as, and
/// storybench never changes the owner of files it did not create.
pub(super) fn check_owner(dir: &Path) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let Ok(meta) = std::fs::metadata(dir) else {
        return Ok(()); // absent: storybench creates it
    };
    if !meta.is_dir() {
        return Ok(()); // prepare_data_dir says it is not a directory
    }
    let (server, why) = if is_root() {
        (
            postgres_user()?,
            "running as root, storybench runs the server as the `postgres` OS user",
        )
    } else {
        let uid = nix::unistd::geteuid();
        let me = nix::unistd::User::from_uid(uid)
            .ok()
            .flatten()
            .ok_or_else(|| anyhow!("cannot look up the OS user with uid {uid}"))?;
        (me, "the server runs as the user running storybench")
    };
    let owner = meta.uid();
    let is_cluster = dir.join("PG_VERSION").exists();
    // An empty directory we own is fine: initdb fills it and, as root, it is handed to postgres.
    let ours = owner == nix::unistd::geteuid().as_raw();
    if owner == server.uid.as_raw() || (!is_cluster && ours) {
        return Ok(());
    }
    let owner_name = nix::unistd::User::from_uid(owner.into())
        .ok()
        .flatten()
        .map(|u| u.name)
        .unwrap_or_else(|| "an unknown user".into());
    let what = if is_cluster {
        " (a PostgreSQL cluster)"
    } else {
        ""
    };
    // PostgreSQL never runs as root, so running storybench as root is no way out.
    let run_as = if owner == 0 {
        String::new()
    } else {
        format!(", or run storybench as {owner_name}")
    };
    bail!(
        "the data directory {}{what} is owned by the OS user {owner_name} (uid {owner}), but the \
         embedded server must run as {} ({why}), and PostgreSQL only runs on a data directory \
         owned by its own user. storybench will not change the owner of files it did not create. \
         Use another --data-dir{run_as}, or, if this directory is yours to hand over, \
         `chown -R {} {}` first.",
        dir.display(),
        server.name,
        server.name,
        dir.display()
    );
}

/// The OS user the server runs as when storybench runs as root.
pub(super) fn postgres_user() -> Result<nix::unistd::User> {
    nix::unistd::User::from_name(SUPERUSER)
        .context("looking up the postgres OS user")?
        .ok_or_else(|| anyhow!("running as root needs a `postgres` OS user to run the server (it comes with `apt-get install postgresql`)"))
}
