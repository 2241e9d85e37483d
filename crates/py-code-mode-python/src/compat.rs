//! What 0.10's API needs beyond the seed's: executor-owned `tools_path`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use py_code_mode::{FileStorage, ToolAdapter, ToolRegistry};

/// The tools defined in `dir` (0.10's `InProcessConfig(tools_path=...)` /
/// `SubprocessConfig(tools_path=...)`), read as a library whose tools folder
/// it is, so the same bounds and parser apply as for the storage's own.
pub(crate) async fn tools_in(dir: &Path) -> py_code_mode::Result<Vec<Arc<dyn ToolAdapter>>> {
    // Nothing is written to a library opened only to read its tools: the
    // other folders are never touched.
    let unused = dir.join(".py-code-mode-unused");
    let storage = FileStorage::with_dirs(
        dir,
        dir.to_path_buf(),
        PathBuf::from(&unused).join("skills"),
        unused.join("artifacts"),
    )?;
    let registry = ToolRegistry::load(&storage).await?;
    Ok(registry.tools())
}
