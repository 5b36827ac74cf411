//! The engine's behaviour: given/when/then scenarios, and properties of the fold.

mod properties;
mod scenarios;
mod support;
