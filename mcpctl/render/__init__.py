"""Everything a person or a script reads: text through rich on a terminal, or JSON."""
