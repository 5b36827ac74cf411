//! Laurel's integration tests: one binary, a module per feature.

mod cli;
mod engine;
mod faults;
mod http;
mod log;
mod projections;
mod support;
