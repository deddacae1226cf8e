"""Event streams: ring buffers, perf buffers and printed lines read in the background into DataFrames."""
