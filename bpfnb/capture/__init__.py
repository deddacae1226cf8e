"""Captures: what programs produced, recorded to Parquet files, and read back anywhere.

``bpfnb.record()`` (``%bpf record`` in a notebook) follows programs while
they run, ``bpfnb.save()`` writes a one-off capture, and ``bpfnb.load()``
opens one with pandas and pyarrow only. The files' layout and every field of
the manifest are described in CAPTURES.md at the repository's top.

The reading side (:mod:`.recorded`, :mod:`.files`) imports nothing that
needs a kernel, so that a capture opens on any machine.
"""
