//! The chunk codec: a frame's body holds consecutive entries of one partition, compressed
//! when that pays and sealed when the data dir is.

use bytes::Bytes;

use super::dedup::canonical_uuid;
use super::segments::{self, Encoding, Loc};
use crate::seal::Sealer;

/// Most entries in one chunk: bounds what a reader decodes to reach one entry.
pub(super) const CHUNK_ENTRIES: usize = 256;

/// An id length saying "16 bytes of a UUID, written as a string in canonical form".
pub(super) const UUID_ID: u16 = u16::MAX;

/// Builds the body of one chunk: per entry `[id length: u16][id][payload length:
/// u32][payload]`.
pub(super) struct Chunk {
    pub(super) first: u64,
    pub(super) count: u32,
    pub(super) body: Vec<u8>,
}

impl Chunk {
    pub(super) fn new(first: u64) -> Self {
        Self {
            first,
            count: 0,
            body: Vec::with_capacity(4096),
        }
    }

    pub(super) fn push(&mut self, id: &str, payload: &[u8]) {
        match canonical_uuid(id) {
            Some(uuid) => {
                self.body.extend_from_slice(&UUID_ID.to_be_bytes());
                self.body.extend_from_slice(uuid.as_bytes());
            }
            None => {
                self.body
                    .extend_from_slice(&(id.len() as u16).to_be_bytes());
                self.body.extend_from_slice(id.as_bytes());
            }
        }
        self.body
            .extend_from_slice(&(payload.len() as u32).to_be_bytes());
        self.body.extend_from_slice(payload);
        self.count += 1;
    }

    /// Appends the chunk as a frame to `out`, compressed when that pays, sealed with `seal`
    /// when given; returns where its body starts in `out` and how the frame is laid out.
    pub(super) fn frame(
        &self,
        partition: u32,
        at_ms: u64,
        seal: Option<&Sealer>,
        out: &mut Vec<u8>,
    ) -> (usize, Loc) {
        let compressed = lz4_flex::compress_prepend_size(&self.body);
        let (lz4, body) = if compressed.len() < self.body.len() * 9 / 10 {
            (true, compressed.as_slice())
        } else {
            (false, self.body.as_slice())
        };
        let sealed = seal.map(|seal| {
            seal.seal(
                body,
                &segments::frame_aad(partition, self.first, self.count),
            )
        });
        let body = sealed.as_deref().unwrap_or(body);
        let encoding = Encoding {
            lz4,
            sealed: seal.is_some(),
        };
        let start = out.len();
        segments::push_frame(
            out, partition, self.first, self.count, at_ms, encoding, body,
        );
        let loc = Loc {
            first: self.first,
            offset: 0,
            segment: 0,
            len: body.len() as u32,
            count: self.count,
            encoding,
        };
        (start + segments::HEADER, loc)
    }
}

/// One entry of a stored chunk.
pub(super) struct Stored {
    /// Decoded only when asked for (readers do not need it).
    pub(super) id: Option<String>,
    pub(super) payload: Bytes,
}

/// Decodes a chunk's body (decompressed): its `count` entries in order, with their ids when
/// `ids`. `None` when corrupt.
pub(super) fn decode_chunk(body: Bytes, count: u32, ids: bool) -> Option<Vec<Stored>> {
    let mut at = 0;
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = u16::from_be_bytes(body.get(at..at + 2)?.try_into().ok()?);
        at += 2;
        let id = if len == UUID_ID {
            let bytes: [u8; 16] = body.get(at..at + 16)?.try_into().ok()?;
            at += 16;
            ids.then(|| uuid::Uuid::from_bytes(bytes).hyphenated().to_string())
        } else {
            let id = std::str::from_utf8(body.get(at..at + len as usize)?).ok()?;
            at += len as usize;
            ids.then(|| id.to_string())
        };
        let plen = u32::from_be_bytes(body.get(at..at + 4)?.try_into().ok()?) as usize;
        at += 4;
        if body.len() < at + plen {
            return None;
        }
        out.push(Stored {
            id,
            payload: body.slice(at..at + plen),
        });
        at += plen;
    }
    (at == body.len()).then_some(out)
}

/// A stored chunk's body, unsealed and decompressed, and decoded: its entries.
pub(super) fn read_chunk(
    raw: Vec<u8>,
    encoding: Encoding,
    at: (u32, u64, u32),
    seal: Option<&Sealer>,
    ids: bool,
) -> Result<Vec<Stored>, String> {
    let (partition, first, count) = at;
    let raw = match (encoding.sealed, seal) {
        (false, _) => raw,
        (true, None) => return Err("a sealed chunk, and no data key".into()),
        (true, Some(seal)) => seal
            .open(&raw, &segments::frame_aad(partition, first, count))
            .map_err(|e| e.to_string())?,
    };
    let body = if encoding.lz4 {
        lz4_flex::decompress_size_prepended(&raw)
            .map_err(|e| format!("corrupt compression: {e}"))?
    } else {
        raw
    };
    decode_chunk(Bytes::from(body), count, ids).ok_or_else(|| "corrupt chunk".to_string())
}
