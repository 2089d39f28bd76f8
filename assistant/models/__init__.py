"""Learned weights shipped with the package, with their model card (see MODEL_CARD.md)."""
