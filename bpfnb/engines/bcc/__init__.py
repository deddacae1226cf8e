"""The BCC engine: BCC-flavoured C compiled by BCC (crash-proof), loaded and attached all-or-nothing."""
