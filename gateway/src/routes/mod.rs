//! The HTTP routes (SPEC section 4).

pub(crate) mod admin;
pub(crate) mod audit;
pub(crate) mod community;
pub(crate) mod icons;
pub(crate) mod ingest;
pub(crate) mod insights;
pub(crate) mod notifications;
pub(crate) mod ops;
pub(crate) mod players;
pub(crate) mod replay;
pub(crate) mod rewards;
pub(crate) mod session;
pub(crate) mod timeline;
