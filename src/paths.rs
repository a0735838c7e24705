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
