//! State derived from a log (engine state, views) records which log it came from.

/// Makes sure the derived state in `db` (the trees whose names start with `prefix`) was
/// derived from the log called `identity` (see [`crate::Log::identity`]; a caller may add
/// its own layout to it, so that state of an earlier layout is rebuilt too). State derived from
/// another log (another data dir's embedded log, a JetStream stream deleted and created
/// again, a switch between backends) is dropped, so that it is rebuilt from this log: its
/// positions mean nothing here, and trusting them would skip this log's entries. Returns
/// whether anything was dropped.
pub fn bind(db: &sled::Db, prefix: &str, identity: &str) -> Result<bool, sled::Error> {
    let meta = db.open_tree(format!("{prefix}meta"))?;
    let stored = meta.get("log")?;
    if stored.as_deref() == Some(identity.as_bytes()) {
        return Ok(false);
    }
    let stale: Vec<_> = db
        .tree_names()
        .into_iter()
        .filter(|name| name.starts_with(prefix.as_bytes()) && name.as_ref() != meta.name().as_ref())
        .collect();
    let mut dropped = false;
    for name in stale {
        let tree = db.open_tree(&name)?;
        if !tree.is_empty() {
            dropped = true;
        }
        tree.clear()?;
    }
    if dropped {
        tracing::warn!(
            state = prefix.trim_end_matches('/'),
            previous = %String::from_utf8_lossy(stored.as_deref().unwrap_or(b"unrecorded")),
            log = identity,
            "derived state came from another log or an earlier layout; rebuilding it from the log"
        );
    }
    meta.insert("log", identity.as_bytes())?;
    db.flush()?;
    Ok(dropped)
}
