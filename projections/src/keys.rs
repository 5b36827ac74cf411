//! Key layout of the view trees. A NUL separates parts: ids hold no control characters.

pub(crate) const POSITION: &[u8] = b"M:pos";
pub(crate) const CHECKPOINT: &[u8] = b"M:checkpoint";
pub(crate) const PLAYERS: &[u8] = b"M:players";

fn key(tag: u8, parts: &[&str]) -> Vec<u8> {
    let mut k = vec![tag];
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            k.push(0);
        }
        k.extend_from_slice(part.as_bytes());
    }
    k
}

/// A player's stats, one record (msgpack map of stat to value): `S<player>`. Rewritten on
/// every change of a stat; small.
pub(crate) fn stats(player: &str) -> Vec<u8> {
    key(b'S', &[player])
}

/// A player's earned achievements and points, one record: `E<player>`. Rewritten only on an
/// unlock. Either record's presence marks the player as seen.
pub(crate) fn earned(player: &str) -> Vec<u8> {
    key(b'E', &[player])
}

/// A player's periodic stats, one record (stat to period label to value, the last
/// periods of each): `P<player>`.
pub(crate) fn periods(player: &str) -> Vec<u8> {
    key(b'P', &[player])
}

/// How many of the partition's players earned a periodic achievement in a period:
/// `R<achievement>NUL<period>`.
pub(crate) fn period_rarity(achievement: &str, period: &str) -> Vec<u8> {
    key(b'R', &[achievement, period])
}

/// The partition's share of a community total (`global` stat), as of its last batch:
/// `G<stat>` → msgpack value.
pub(crate) fn community_share(stat: &str) -> Vec<u8> {
    key(b'G', &[stat])
}

/// That the partition's engine knows the community goal reached: `Q<achievement>`.
pub(crate) fn community_reached(achievement: &str) -> Vec<u8> {
    key(b'Q', &[achievement])
}

/// A player's most recent refusals, one record: `X<player>`.
pub(crate) fn refusals(player: &str) -> Vec<u8> {
    key(b'X', &[player])
}

/// How many events of the partition the engine refused for a reason: `C<code>`.
pub(crate) fn refusal_count(code: &str) -> Vec<u8> {
    key(b'C', &[code])
}

/// How many of the partition's events reporting a stat the engine refused for a reason:
/// `K<stat>NUL<code>`.
pub(crate) fn stat_refusal_count(stat: &str, code: &str) -> Vec<u8> {
    key(b'K', &[stat, code])
}

/// How many of the partition's players first earned an achievement on a UTC day:
/// `D<achievement>NUL<YYYY-MM-DD>`.
pub(crate) fn rarity_day(achievement: &str, day: &str) -> Vec<u8> {
    key(b'D', &[achievement, day])
}

/// How many of the partition's players earned an achievement: `R<achievement>`.
pub(crate) fn rarity(achievement: &str) -> Vec<u8> {
    key(b'R', &[achievement])
}

/// The last part of a key after its prefix, as a string.
pub(crate) fn suffix(key: &[u8], prefix_len: usize) -> Option<&str> {
    std::str::from_utf8(key.get(prefix_len..)?).ok()
}

pub(crate) fn u64_of(raw: Option<&[u8]>) -> u64 {
    raw.and_then(|v| v.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}
