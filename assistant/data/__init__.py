"""Data files the code reads (word lists), each with a comment on where it came from."""
