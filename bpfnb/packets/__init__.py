"""The packet lab: building packets and running XDP, tc and socket-filter programs on them with BPF_PROG_TEST_RUN."""
