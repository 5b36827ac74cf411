//! Laurel's read models, folded from the OUTPUT and DEFS logs.
//!
//! The views are built in the logs-and-projections work; this crate holds their place in the
//! workspace layout.
