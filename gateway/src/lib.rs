//! Laurel's gateway: the HTTP API and the `laurel` command line.

pub mod cli;
