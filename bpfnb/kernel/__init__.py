"""Kernel access without an engine: libbpf syscalls, constants, perf events, tracefs, cgroups, namespaces, the environment."""
