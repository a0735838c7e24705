//! Where storybench finds its editable files (`schema/`, `seed/`, `scenarios/`) and writes reports.

use std::path::{Path, PathBuf};

/// Resolves a project file: `STORYBENCH_HOME/<rel>` when set, else `./<rel>` when it exists,
/// else the source checkout storybench was built from.
pub fn project_file(rel: impl AsRef<Path>) -> PathBuf {
    let rel = rel.as_ref();
    if let Some(home) = std::env::var_os("STORYBENCH_HOME") {
        return PathBuf::from(home).join(rel);
    }
    let local = PathBuf::from(rel);
    if local.exists() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join(rel)
}

/// Reads a project file, naming it in the error.
pub fn read_project_file(rel: impl AsRef<Path>) -> anyhow::Result<(PathBuf, String)> {
    use anyhow::Context;
    let path = project_file(rel);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    Ok((path, text))
}

/// Line number (1-based) of a byte offset in a text.
pub fn line_of_offset(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Writes a file through a temporary sibling and a rename, so a crash never leaves a
/// truncated file where a good one was.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::io::Write;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    tmp.write_all(bytes)
        .with_context(|| format!("writing {}", path.display()))?;
    tmp.as_file().sync_all().ok();
    // Reports are meant to be shared (CI artifacts, web servers): not the temp file's 0600.
    use std::os::unix::fs::PermissionsExt;
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .ok();
    tmp.persist(path)
        .with_context(|| format!("replacing {}", path.display()))?;
    Ok(())
}
