"""HTML building blocks for notebook representations: cards, tables, facts, notes."""
