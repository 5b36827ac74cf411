//! The log's `meta` file: what it was created with, written durably.

use std::fs::File;
use std::io;
use std::path::Path;

use super::fail::{corrupt, storage};
use crate::LogError;

/// The format this version writes, named in `meta`.
pub(super) const FORMAT: &str = "segments-1";

/// The log's `meta` file: what it was created with.
#[derive(Clone)]
pub(super) struct Meta {
    pub(super) partitions: u32,
    pub(super) identity: String,
    /// The id of the sealer that seals the log's frames, once one does.
    pub(super) sealed: Option<String>,
}

impl Meta {
    pub(super) fn read(dir: &Path) -> Result<Option<Self>, LogError> {
        let text = match std::fs::read_to_string(dir.join("meta")) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(storage(e)),
        };
        let field = |name: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
                .ok_or_else(|| corrupt(format!("{} has no {name}", dir.join("meta").display())))
        };
        if field("format")? != FORMAT {
            return Err(LogError::Misconfigured(format!(
                "the log in {} is of format {}, which this version does not read",
                dir.display(),
                field("format")?
            )));
        }
        Ok(Some(Self {
            partitions: field("partitions")?
                .parse()
                .map_err(|_| corrupt("meta: unreadable partition count"))?,
            identity: field("identity")?.to_string(),
            sealed: field("sealed").ok().map(str::to_string),
        }))
    }

    /// Writes the file whole or not at all.
    pub(super) fn write(&self, dir: &Path) -> io::Result<()> {
        let mut text = format!(
            "format={FORMAT}\npartitions={}\nidentity={}\n",
            self.partitions, self.identity
        );
        if let Some(sealed) = &self.sealed {
            text.push_str(&format!("sealed={sealed}\n"));
        }
        write_durably(&dir.join("meta"), text.as_bytes())
    }
}

/// Replaces `path` with `bytes`, whole, and makes it durable.
pub(super) fn write_durably(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes)?;
    File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, path)?;
    File::open(path.parent().unwrap_or(Path::new(".")))?.sync_all()
}
