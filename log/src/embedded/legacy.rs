//! Logs written by earlier versions, which kept the streams in sled: imported into segments
//! on open, keeping every entry's sequence, append time and id, the log's identity (so
//! derived state stays bound to it) and the consumers' cursors.
//!
//! The import is built beside the log (`<dir>.importing`, its `meta` written last) and then
//! swapped in; the sled files are kept as `<dir>.sled-imported` for the operator to delete.
//! An import cut short is started again; one cut between the two renames is finished.

use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::chunk::{CHUNK_ENTRIES, Chunk};
use super::fail::{corrupt, storage};
use super::meta::{Meta, write_durably};
use super::segments::{SEGMENT_BYTES, Segments};
use crate::seal::Sealer;
use crate::{LogError, StreamKind};

/// Bytes of frames gathered before each write.
const WRITE_BYTES: usize = 4 << 20;

/// The first byte of a legacy chunk, after which its body follows: raw or LZ4-compressed.
/// A record of the first format (one entry per key) starts with its append time's high
/// byte, 0.
const CHUNK_RAW: u8 = 0xC1;
const CHUNK_LZ4: u8 = 0xC2;
const UUID_ID: u16 = u16::MAX;

fn sibling(dir: &Path, suffix: &str) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{suffix}"));
    dir.with_file_name(name)
}

/// Imports the sled log in `dir`, if that is what `dir` holds.
pub(super) fn import_if_present(dir: &Path, seal: Option<&Sealer>) -> Result<(), LogError> {
    let staging = sibling(dir, "importing");
    let old = sibling(dir, "sled-imported");
    if !dir.exists() && staging.join("meta").exists() {
        std::fs::rename(&staging, dir).map_err(storage)?;
        return Ok(());
    }
    if !dir.join("db").exists() || !dir.join("conf").exists() || dir.join("meta").exists() {
        return Ok(());
    }
    if staging.exists() {
        std::fs::remove_dir_all(&staging).map_err(storage)?;
    }
    tracing::warn!(log = %dir.display(), "importing a log written by an earlier version");
    let db = sled::open(dir)?;
    let meta = db.open_tree("meta")?;
    let partitions = meta
        .get("partitions")?
        .and_then(|v| v.as_ref().try_into().ok().map(u32::from_be_bytes))
        .ok_or_else(|| corrupt("the earlier log has no partition count"))?;
    let identity = meta
        .get("identity")?
        .map(|v| String::from_utf8_lossy(&v).into_owned())
        .ok_or_else(|| corrupt("the earlier log has no identity"))?;
    std::fs::create_dir_all(&staging).map_err(storage)?;
    let mut imported = 0u64;
    for kind in StreamKind::ALL {
        let count = if kind.is_partitioned() { partitions } else { 1 };
        let segments = Segments::open(&staging.join(kind.name()), SEGMENT_BYTES, |_, _| Ok(()))
            .map_err(storage)?;
        let mut frames = Vec::new();
        for p in 0..count {
            let tree = db.open_tree(format!("{}/{p}", kind.name()))?;
            let mut open: Option<(u64, Chunk)> = None;
            for item in tree.iter() {
                let (key, raw) = item?;
                let first = key.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
                let entries = decode(first, &raw).ok_or_else(|| {
                    corrupt(format!(
                        "a corrupt chunk in the earlier log's {}/{p}",
                        kind.name()
                    ))
                })?;
                for (seq, at_ms, id, payload) in entries {
                    let fits = matches!(&open, Some((at, chunk))
                        if *at == at_ms && (chunk.count as usize) < CHUNK_ENTRIES);
                    if !fits && let Some((at, chunk)) = open.take() {
                        chunk.frame(p, at, seal, &mut frames);
                    }
                    let (_, chunk) = open.get_or_insert_with(|| (at_ms, Chunk::new(seq)));
                    chunk.push(&id, &payload);
                    imported += 1;
                    if frames.len() >= WRITE_BYTES {
                        segments.write(&frames).map_err(storage)?;
                        frames.clear();
                    }
                }
            }
            if let Some((at, chunk)) = open.take() {
                chunk.frame(p, at, seal, &mut frames);
            }
        }
        if !frames.is_empty() {
            segments.write(&frames).map_err(storage)?;
        }
        segments.sync_now().map_err(storage)?;
    }
    let mut cursors = String::new();
    for item in db.open_tree("cursors")?.iter() {
        let (key, seq) = item?;
        let seq = seq.as_ref().try_into().map(u64::from_be_bytes).unwrap_or(0);
        cursors.push_str(&format!("{} {seq}\n", String::from_utf8_lossy(&key)));
    }
    write_durably(&staging.join("cursors"), cursors.as_bytes()).map_err(storage)?;
    Meta {
        partitions,
        identity,
        sealed: seal.map(Sealer::id),
    }
    .write(&staging)
    .map_err(storage)?;
    drop(db);
    std::fs::rename(dir, &old).map_err(storage)?;
    std::fs::rename(&staging, dir).map_err(storage)?;
    tracing::warn!(
        log = %dir.display(),
        entries = imported,
        kept = %old.display(),
        "imported the earlier log; its files are kept beside it, to delete once satisfied"
    );
    Ok(())
}

/// The entries of a legacy chunk stored under `first`: sequence, append time, id, payload.
fn decode(first: u64, raw: &[u8]) -> Option<Vec<(u64, u64, String, Bytes)>> {
    let body: Bytes = match *raw.first()? {
        CHUNK_RAW => Bytes::copy_from_slice(&raw[1..]),
        CHUNK_LZ4 => Bytes::from(lz4_flex::decompress_size_prepended(&raw[1..]).ok()?),
        // The first format: one entry, `[append time ms: u64][id length: u16][id][payload]`.
        _ => {
            let at_ms = u64::from_be_bytes(raw.get(..8)?.try_into().ok()?);
            let len = u16::from_be_bytes(raw.get(8..10)?.try_into().ok()?) as usize;
            let id = std::str::from_utf8(raw.get(10..10 + len)?).ok()?;
            let payload = Bytes::copy_from_slice(&raw[10 + len..]);
            return Some(vec![(first, at_ms, id.to_string(), payload)]);
        }
    };
    // `[append time ms: u64][count: u32]`, then per entry `[id length: u16][id][payload
    // length: u32][payload]`.
    let at_ms = u64::from_be_bytes(body.get(..8)?.try_into().ok()?);
    let count = u32::from_be_bytes(body.get(8..12)?.try_into().ok()?) as usize;
    let mut at = 12;
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let len = u16::from_be_bytes(body.get(at..at + 2)?.try_into().ok()?);
        at += 2;
        let id = if len == UUID_ID {
            let bytes: [u8; 16] = body.get(at..at + 16)?.try_into().ok()?;
            at += 16;
            uuid::Uuid::from_bytes(bytes).hyphenated().to_string()
        } else {
            let id = std::str::from_utf8(body.get(at..at + len as usize)?).ok()?;
            at += len as usize;
            id.to_string()
        };
        let plen = u32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        let payload = body.get(at..at + plen).map(|_| body.slice(at..at + plen))?;
        at += plen;
        out.push((first + i as u64, at_ms, id, payload));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::embedded::EmbeddedLog;
    use crate::{Entry, LogConfig, Start, Target};

    fn now_ms() -> u64 {
        super::super::now_ms()
    }

    /// A chunk as the sled version wrote it (raw or LZ4).
    fn legacy_chunk(at_ms: u64, entries: &[(&str, &[u8])], lz4: bool) -> Vec<u8> {
        let mut body = Vec::new();
        body.extend_from_slice(&at_ms.to_be_bytes());
        body.extend_from_slice(&(entries.len() as u32).to_be_bytes());
        for (id, payload) in entries {
            match uuid::Uuid::try_parse(id) {
                Ok(u) => {
                    body.extend_from_slice(&UUID_ID.to_be_bytes());
                    body.extend_from_slice(u.as_bytes());
                }
                Err(_) => {
                    body.extend_from_slice(&(id.len() as u16).to_be_bytes());
                    body.extend_from_slice(id.as_bytes());
                }
            }
            body.extend_from_slice(&(payload.len() as u32).to_be_bytes());
            body.extend_from_slice(payload);
        }
        let mut out = vec![if lz4 { CHUNK_LZ4 } else { CHUNK_RAW }];
        if lz4 {
            out.extend_from_slice(&lz4_flex::compress_prepend_size(&body));
        } else {
            out.extend_from_slice(&body);
        }
        out
    }

    /// A record of the sled version's first format: one entry per key.
    fn legacy_record(at_ms: u64, id: &str, payload: &[u8]) -> Vec<u8> {
        let mut out = at_ms.to_be_bytes().to_vec();
        out.extend_from_slice(&(id.len() as u16).to_be_bytes());
        out.extend_from_slice(id.as_bytes());
        out.extend_from_slice(payload);
        out
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_sled_log_is_imported_whole_with_its_identity_cursors_and_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let uuid = "6a1e5d8e-4c5b-4f7e-9d2a-0b1c2d3e4f50";
        {
            let db = sled::open(&path).unwrap();
            let meta = db.open_tree("meta").unwrap();
            meta.insert("partitions", &2u32.to_be_bytes()).unwrap();
            meta.insert("identity", "embedded:earlier").unwrap();
            let stats1 = db.open_tree("stats/1").unwrap();
            let now = now_ms();
            stats1
                .insert(1u64.to_be_bytes(), legacy_record(now, "a", b"one"))
                .unwrap();
            let two: &[(&str, &[u8])] = &[("b", b"two"), (uuid, b"three")];
            stats1
                .insert(2u64.to_be_bytes(), legacy_chunk(now, two, false))
                .unwrap();
            let four: &[(&str, &[u8])] = &[("d", &[b'x'; 300])];
            stats1
                .insert(4u64.to_be_bytes(), legacy_chunk(now, four, true))
                .unwrap();
            let defs = db.open_tree("defs/0").unwrap();
            let def: &[(&str, &[u8])] = &[("stat:kills", b"def")];
            defs.insert(1u64.to_be_bytes(), legacy_chunk(now, def, false))
                .unwrap();
            let cursors = db.open_tree("cursors").unwrap();
            cursors
                .insert("stats/1/engine", &2u64.to_be_bytes())
                .unwrap();
            db.flush().unwrap();
        }
        let config = LogConfig {
            partitions: 2,
            ..LogConfig::default()
        };
        let log = EmbeddedLog::open(&path, config.clone()).unwrap();
        assert_eq!(log.identity(), "embedded:earlier");
        assert_eq!(log.last_seq(StreamKind::Stats, 1), 4);
        assert_eq!(log.last_seq(StreamKind::Stats, 0), 0);
        assert_eq!(log.last_seq(StreamKind::Defs, 0), 1);
        let mut reader = log
            .reader(StreamKind::Stats, 1, "engine", Start::After(0))
            .unwrap();
        let records = reader.next_batch(10, Duration::from_secs(1)).await.unwrap();
        let got: Vec<(u64, &[u8])> = records.iter().map(|r| (r.seq, &r.payload[..])).collect();
        let mut want: Vec<(u64, &[u8])> = vec![(1, b"one"), (2, b"two"), (3, b"three")];
        want.push((4, &[b'x'; 300]));
        assert_eq!(got, want);
        let resumed = log
            .reader(StreamKind::Stats, 1, "engine", Start::Resume)
            .unwrap()
            .next_batch(10, Duration::from_secs(1))
            .await
            .unwrap();
        assert_eq!(
            resumed.first().map(|r| r.seq),
            Some(3),
            "the cursor came along"
        );
        // The ids appended inside the window are still known: a retry is a duplicate.
        let again = |id: &str| Entry {
            target: Target::Partition(1),
            id: id.into(),
            payload: b"again".to_vec(),
        };
        let acks = log
            .append(
                StreamKind::Stats,
                vec![again(uuid), again("a"), again("new")],
            )
            .await
            .unwrap();
        assert_eq!(
            acks.iter()
                .map(|a| (a.seq, a.duplicate))
                .collect::<Vec<_>>(),
            vec![(3, true), (1, true), (5, false)]
        );
        drop((log, reader)); // every handle, readers too, before it opens again
        assert!(dir.path().join("log.sled-imported/db").exists());
        assert!(!dir.path().join("log.importing").exists());
        let reopened = EmbeddedLog::open(&path, config).unwrap();
        assert_eq!(reopened.identity(), "embedded:earlier");
        assert_eq!(reopened.last_seq(StreamKind::Stats, 1), 5);
    }
}
