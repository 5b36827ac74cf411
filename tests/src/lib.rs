//! Support for Laurel's integration tests: helpers shared by the test modules.
