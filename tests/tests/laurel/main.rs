//! Laurel's integration tests: one binary, a module per feature.

mod cli;
mod engine;
mod log;
mod projections;
mod support;
