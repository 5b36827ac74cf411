//! Fuzz target: `laurel_gateway::fuzzing::ingest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| laurel_gateway::fuzzing::ingest(data));
