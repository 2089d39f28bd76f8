"""Question analysis, extractive and generative answering, verification."""
