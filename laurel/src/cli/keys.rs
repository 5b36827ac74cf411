//! Secrets kept in the data dir: the development signing key and the GameKit paging key.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// The file holding the development signing key.
pub fn dev_key_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dev-signing-key")
}

/// Reads the data dir's development key, creating it if `create` and it is missing. The
/// file is readable by its owner only (one found readable by others is made so, with a
/// warning).
pub fn dev_key(data_dir: &Path, create: bool) -> anyhow::Result<Vec<u8>> {
    let (key, created) = secret_file(&dev_key_path(data_dir), create)
        .with_context(|| format!("the dev key in {}", data_dir.display()))?;
    if created {
        tracing::warn!(path = %dev_key_path(data_dir).display(), "created a development signing key: use `laurel token` for tokens; configure real keys for production");
    }
    Ok(key)
}

/// The secret that signs GameKit paging tokens, created in the data dir when missing.
pub fn paging_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    Ok(secret_file(&data_dir.join("gamekit-paging-key"), true)?.0)
}

/// A random secret kept in a file readable by its owner only: read, or created if `create`
/// (and whether it was).
fn secret_file(path: &Path, create: bool) -> anyhow::Result<(Vec<u8>, bool)> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    match std::fs::read_to_string(path) {
        Ok(key) => {
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "a secret was readable by others; making it owner-only");
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok((key.trim().as_bytes().to_vec(), false))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let bytes: [u8; 32] = rand::random();
            let key = bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .with_context(|| format!("creating {}", path.display()))?;
            file.write_all(key.as_bytes())?;
            file.sync_all()?;
            Ok((key.into_bytes(), true))
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
