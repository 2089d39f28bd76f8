"""Reading, splitting and indexing source files."""
