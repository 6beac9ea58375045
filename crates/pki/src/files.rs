//! Private files: created 0600, replaced atomically, directories 0700.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::PkiError;

static TMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Create `dir` (and parents) with mode 0700 if missing. When `enforce` is set an existing
/// directory is narrowed to 0700 too.
pub(crate) fn ensure_private_dir(dir: &Path, enforce: bool) -> Result<(), PkiError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(|e| PkiError::io(dir, e))?;
    if enforce {
        let meta = fs::metadata(dir).map_err(|e| PkiError::io(dir, e))?;
        if meta.permissions().mode() & 0o777 != 0o700 {
            fs::set_permissions(dir, fs::Permissions::from_mode(0o700))
                .map_err(|e| PkiError::io(dir, e))?;
        }
    }
    Ok(())
}

/// Replace `path` with `contents`: write a 0600 temporary file next to it, fsync, rename.
/// Readers see either the old or the new file, never a torn one.
pub(crate) fn write_private_atomic(path: &Path, contents: &[u8]) -> Result<(), PkiError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| PkiError::invalid(path, "not a file path"))?
        .to_string_lossy();
    let tmp = dir.join(format!(
        ".{name}.tmp.{}.{}",
        std::process::id(),
        TMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| PkiError::io(&tmp, e))?;
        // The umask can only remove bits, but be explicit: these files hold private keys.
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(|e| PkiError::io(&tmp, e))?;
        f.write_all(contents).map_err(|e| PkiError::io(&tmp, e))?;
        f.sync_all().map_err(|e| PkiError::io(&tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| PkiError::io(path, e))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // Make the rename durable; failure here only weakens crash safety, so ignore it.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Read a file that may legitimately be absent.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, PkiError> {
    match fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PkiError::io(path, e)),
    }
}

pub(crate) fn read_required(path: &Path) -> Result<Vec<u8>, PkiError> {
    fs::read(path).map_err(|e| PkiError::io(path, e))
}
