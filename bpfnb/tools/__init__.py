"""Tools around the kernel: the doctor, the helper catalog and browser, probe listings, the kernel spec, the CLI."""
