//! Workloads shared by Laurel's benchmarks.
