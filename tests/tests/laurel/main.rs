//! Laurel's integration tests: one binary, a module per feature.

mod answers;
mod at_rest;
mod auth;
mod cli;
mod console;
mod deploy;
mod docs;
mod engine;
mod examples;
mod faults;
mod gamekit;
mod http;
mod icons;
mod integrity;
mod live_ops;
mod log;
mod players;
mod projections;
mod replay;
mod sdk;
mod support;
mod tls;
