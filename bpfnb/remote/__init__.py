"""One cell on many hosts, on an ipyparallel cluster.

``bpfnb.cluster(profile=...)`` connects (:mod:`.connection`); a cell loads on
each host's engine (:mod:`.program`), where :mod:`.agent` holds it and its
data; maps (:mod:`.maps`) come back as Arrow tables and streams
(:mod:`.streams`) as the kernel's raw records (:mod:`.wire`), gathered into
one frame with a ``host`` column.
:mod:`.launch` starts clusters with ipyparallel's own launchers.

This package imports nothing by itself, so that engines importing
:mod:`.agent` load neither ipyparallel's client nor IPython.
"""
