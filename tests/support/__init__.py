"""Test helpers shared by several test packages and the benchmarks: real nodes, workloads, hosts."""
