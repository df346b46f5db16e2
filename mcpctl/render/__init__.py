"""Everything a person or a script reads: text (rich tables on a terminal) or JSON. Only this package imports rich."""
