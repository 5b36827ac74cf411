//! msgpack encoding of log messages: maps with named fields, decodable without Laurel's code.
//!
//! Encoding is "human readable" in serde's sense: UUIDs are written as their 36-character
//! string form, as in JSON, so a consumer in any language reads them without bit twiddling.

use serde::{Serialize, de::DeserializeOwned};

/// A message could not be decoded from msgpack.
#[derive(Debug, thiserror::Error)]
#[error("undecodable message: {0}")]
pub struct DecodeError(#[from] rmp_serde::decode::Error);

/// Encodes a message as a msgpack map with named fields.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    let mut buf = Vec::with_capacity(128);
    encode_into(value, &mut buf);
    buf
}

/// Appends the msgpack encoding of a message to `buf`.
pub fn encode_into<T: Serialize + ?Sized>(value: &T, buf: &mut Vec<u8>) {
    let mut ser = rmp_serde::Serializer::new(buf)
        .with_struct_map()
        .with_human_readable();
    // Encoding into a Vec fails only for types serde cannot represent, which ours never are.
    value
        .serialize(&mut ser)
        .expect("laurel wire types always encode to msgpack");
}

/// How deeply msgpack values may nest, as serde_json allows JSON to: free-form fields
/// (`metadata`, a body's `value`) could otherwise nest deep enough to overflow a thread's
/// stack while they are decoded.
pub const MAX_DEPTH: usize = 128;

/// Decodes a message from msgpack.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes).with_human_readable();
    de.set_max_depth(MAX_DEPTH);
    Ok(T::deserialize(&mut de)?)
}
