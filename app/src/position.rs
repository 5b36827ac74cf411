//! Read-your-writes tokens: the STATS positions an ingest reached, per partition.

use std::collections::BTreeMap;

use crate::AppError;

/// Positions per partition: `"3:1042,7:99"` on the wire.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadToken(pub BTreeMap<u32, u64>);

impl ReadToken {
    /// Records that `partition` reached `seq`.
    pub fn reach(&mut self, partition: u32, seq: u64) {
        let at = self.0.entry(partition).or_default();
        *at = (*at).max(seq);
    }

    /// Parses a token given back by a client.
    pub fn parse(s: &str) -> Result<Self, AppError> {
        let mut token = Self::default();
        for part in s.split(',').filter(|p| !p.is_empty()) {
            let parsed = part
                .split_once(':')
                .and_then(|(p, seq)| Some((p.parse().ok()?, seq.parse().ok()?)));
            let (p, seq) = parsed.ok_or_else(|| {
                AppError::Malformed(format!(
                    "wait_for: `{s}` is not a token from POST /v1/events"
                ))
            })?;
            token.reach(p, seq);
        }
        Ok(token)
    }
}

impl std::fmt::Display for ReadToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|(p, s)| format!("{p}:{s}")).collect();
        f.write_str(&parts.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_keep_the_furthest_position() {
        let mut t = ReadToken::default();
        t.reach(3, 10);
        t.reach(3, 7);
        t.reach(1, 2);
        assert_eq!(t.to_string(), "1:2,3:10");
        assert_eq!(ReadToken::parse("1:2,3:10").unwrap(), t);
        assert!(ReadToken::parse("x").is_err());
    }
}
