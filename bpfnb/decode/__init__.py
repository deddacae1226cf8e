"""Decoding: C types, BTF and ELF into numpy dtypes and DataFrame columns; strings, histograms, value decoders; a map frame's keys and values."""
