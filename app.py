"""Run the assistant: chat UI at /, HTTP API under /api and /v1, widget at /widget.js.

Settings come from ASSISTANT_* variables or .env; the index is built on first run.
"""

from assistant.api.server import serve
from assistant.config import Settings
from assistant.logs import setup_logging

if __name__ == "__main__":
    settings = Settings()
    setup_logging(settings.log)
    serve(settings)
