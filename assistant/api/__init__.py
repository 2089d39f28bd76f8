"""The HTTP API and the widget."""
