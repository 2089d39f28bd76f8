"""The gradio chat UI."""
