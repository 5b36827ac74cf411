//! Secrets kept in the data dir: the development signing key and the GameKit paging key.

use std::path::{Path, PathBuf};

use anyhow::Context;

/// Where the development signing key is: every command finds it the same way.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct DevKeyArgs {
    /// The development signing key's file (HS256; created by `serve` or `gateway` when
    /// missing): give gateways one file so each takes the tokens of the others. Default:
    /// `dev-signing-key` in the data dir.
    #[arg(long, env = "LAUREL_DEV_KEY_FILE", value_name = "FILE")]
    pub dev_key_file: Option<PathBuf>,
}

impl DevKeyArgs {
    /// The key's file: `--dev-key-file`, else the data dir's.
    pub fn path(&self, data_dir: &Path) -> PathBuf {
        self.dev_key_file
            .clone()
            .unwrap_or_else(|| data_dir.join("dev-signing-key"))
    }

    /// Reads the development key, creating it if `create` and it is missing. The file is
    /// readable by its owner only (one found readable by others is made so, with a
    /// warning). A missing key's error says where it was looked for and how to point
    /// elsewhere.
    pub fn key(&self, data_dir: &Path, create: bool) -> anyhow::Result<Vec<u8>> {
        let path = self.path(data_dir);
        let found = secret_file(&path, create).with_context(|| {
            let set_by = if self.dev_key_file.is_some() {
                "--dev-key-file, LAUREL_DEV_KEY_FILE"
            } else {
                "in --data-dir, LAUREL_DATA_DIR"
            };
            format!("the development signing key {} ({set_by})", path.display())
        })?;
        match found {
            Some((key, created)) => {
                if created {
                    tracing::warn!(path = %path.display(), "created a development signing key: use `laurel token` for tokens; configure real keys for production");
                }
                Ok(key)
            }
            None => {
                let absolute = std::path::absolute(&path).unwrap_or_else(|_| path.clone());
                let looked = if self.dev_key_file.is_some() {
                    "as --dev-key-file (LAUREL_DEV_KEY_FILE) says".to_string()
                } else {
                    format!(
                        "in the data dir {} (--data-dir, else LAUREL_DATA_DIR, else `data-dir` in the --config file, else ./laurel-data)",
                        data_dir.display()
                    )
                };
                anyhow::bail!(
                    "no development signing key at {} (looked there {looked}). Run this where `laurel serve` runs (it creates the key in its data dir on first start), point --data-dir at that data dir, or name the key with --dev-key-file",
                    absolute.display()
                )
            }
        }
    }
}

/// The secret that signs GameKit paging tokens, created in the data dir when missing.
pub fn paging_secret(data_dir: &Path) -> anyhow::Result<Vec<u8>> {
    let path = data_dir.join("gamekit-paging-key");
    secret_file(&path, true)?
        .map(|(key, _)| key)
        .with_context(|| format!("creating {}", path.display()))
}

/// A random secret kept in a file readable by its owner only: read, or created if `create`
/// (and whether it was); `None` when missing and not to be created. Processes creating it at
/// once agree on one: it appears whole (written aside, then linked into place) or not at all.
fn secret_file(path: &Path, create: bool) -> anyhow::Result<Option<(Vec<u8>, bool)>> {
    use std::io::Write as _;
    use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
    match std::fs::read_to_string(path) {
        Ok(key) => {
            let mode = std::fs::metadata(path)?.permissions().mode();
            if mode & 0o077 != 0 {
                tracing::warn!(path = %path.display(), mode = format!("{:o}", mode & 0o777), "a secret was readable by others; making it owner-only");
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
            }
            Ok(Some((key.trim().as_bytes().to_vec(), false)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let dir = match path.parent() {
                Some(dir) if !dir.as_os_str().is_empty() => dir,
                _ => Path::new("."),
            };
            std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
            let bytes: [u8; 32] = rand::random();
            let key = bytes.iter().map(|b| format!("{b:02x}")).collect::<String>();
            let aside = dir.join(format!(".{}.{}", uuid::Uuid::new_v4(), "new"));
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(&aside)
                .with_context(|| format!("creating {}", aside.display()))?;
            file.write_all(key.as_bytes())?;
            file.sync_all()?;
            let linked = std::fs::hard_link(&aside, path);
            let _ = std::fs::remove_file(&aside);
            match linked {
                Ok(()) => Ok(Some((key.into_bytes(), true))),
                // Another process made it first: theirs is the key.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => secret_file(path, false),
                Err(e) => Err(e).with_context(|| format!("creating {}", path.display())),
            }
        }
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}
