"""Map views: every BPF map as a live Mapping with .df(), chosen by the map's kernel type; histories over time."""
