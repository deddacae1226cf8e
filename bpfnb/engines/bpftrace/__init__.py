"""The bpftrace engine: a cell's bpftrace script run by bpftrace, a child process that dies with this one.

One job per module:

* :mod:`.text`         lexing just enough of the script: comments, strings, brackets
* :mod:`.script`       the script's probes and maps, and what fills each map
* :mod:`.prepared`     the script bpftrace runs: the user's, then a probe that prints the maps
* :mod:`.diagnostics`  bpftrace's stderr placed in the cell, as bpfnb's errors
* :mod:`.runner`       the child process: started, attached, stopped, never left behind
* :mod:`.output`       bpftrace's JSON lines folded into map snapshots
* :mod:`.lines`        the printed lines, bounded, with their arrival times
* :mod:`.frames`       map snapshots as DataFrames (keys split, histograms as buckets)
* :mod:`.program`      all of it as a :class:`~bpfnb.engines.base.LoadedProgram`

bpftrace holds its programs and maps; bpfnb never gets their fds. Maps are
reported as frames (:class:`~bpfnb.engines.base.ReportedMap`), printed lines
as a :class:`~bpfnb.engines.base.TextOutput`.
"""
