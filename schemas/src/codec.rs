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

/// Decodes a message from msgpack.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut de = rmp_serde::Deserializer::from_read_ref(bytes).with_human_readable();
    Ok(T::deserialize(&mut de)?)
}

/// Decodes exactly one message: bytes after it are refused, as JSON refuses trailing
/// characters (a request body is one value).
pub fn decode_whole<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    let mut rest = bytes;
    let value = {
        let mut de = rmp_serde::Deserializer::new(&mut rest).with_human_readable();
        T::deserialize(&mut de)?
    };
    if !rest.is_empty() {
        return Err(DecodeError(rmp_serde::decode::Error::Syntax(format!(
            "{} bytes follow the msgpack value",
            rest.len()
        ))));
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_decode_refuses_trailing_bytes_and_takes_one_value() {
        let mut bytes = encode(&serde_json::json!({"events": [{"stat": "kills", "value": 1}]}));
        let one: serde_json::Value = decode_whole(&bytes).unwrap();
        assert_eq!(one["events"][0]["value"], 1);
        bytes.push(0xc0); // a msgpack nil after the value
        assert!(decode_whole::<serde_json::Value>(&bytes).is_err());
        assert!(
            decode::<serde_json::Value>(&bytes).is_ok(),
            "a log message may be padded"
        );
    }
}
