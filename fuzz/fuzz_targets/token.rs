//! Fuzz target: `laurel_gateway::fuzzing::token`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| laurel_gateway::fuzzing::token(data));
