//! Fuzz target: `laurel_gateway::fuzzing::definitions`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| laurel_gateway::fuzzing::definitions(data));
