"""The notebook layer: the %%bpf, %%bpftrace and %bpf magics, their options, the session, completion."""
