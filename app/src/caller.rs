//! Who a service acts for.

use laurel_schemas::Source;

/// The caller of a service, as its token says: a player, a game server, or an admin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The token's subject: the player, for player tokens.
    pub subject: String,
    /// What the caller is.
    pub source: Source,
}

impl Caller {
    /// Whether the caller may report stats for any player (servers and admins).
    pub fn is_server(&self) -> bool {
        self.source != Source::Player
    }
}
