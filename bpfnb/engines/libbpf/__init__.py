"""The libbpf engine: CO-RE C compiled by clang in a child process, loaded and attached by libbpf."""
