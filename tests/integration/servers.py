"""Real servers on loopback for tests: the assistant app under uvicorn, and a static host page."""

from __future__ import annotations

import contextlib
import functools
import http.server
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import uvicorn

EXAMPLE_HOST_PAGE = Path(__file__).resolve().parents[2] / "examples" / "host.html"


def write_host_page(folder: Path, app_port: int, widget_key: str | None = None) -> Path:
    """The example page that embeds the widget, pointed at the app on ``app_port`` (carrying ``widget_key``)."""
    page = EXAMPLE_HOST_PAGE.read_text().replace("127.0.0.1:7860", f"127.0.0.1:{app_port}")
    if widget_key:
        page = page.replace(" defer>", f' data-key="{widget_key}" defer>')
    path = folder / "host.html"
    path.write_text(page)
    return path


def free_port() -> int:
    with contextlib.closing(socket.socket()) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def run_app(app, port: int, **options: object) -> Iterator[str]:
    """Serve an ASGI app with uvicorn in a thread; yields its base URL. ``options`` go to ``uvicorn.Config``."""
    options = {"log_level": "warning", **options, "host": "127.0.0.1", "port": port}
    server = uvicorn.Server(uvicorn.Config(app, **options))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 30
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("server did not start")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@contextlib.contextmanager
def serve_folder(folder: Path, port: int) -> Iterator[str]:
    """Serve a folder of static files (the example host page) on loopback."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(folder))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        httpd.shutdown()


@contextlib.contextmanager
def run_process(
    command: list[str],
    ready_url: str,
    timeout_s: float = 120,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Iterator[subprocess.Popen]:
    """Start a server process and wait until ``ready_url`` answers 200; stop it afterwards."""
    import httpx

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=cwd)
    deadline = time.time() + timeout_s
    try:
        while True:
            try:
                if httpx.get(ready_url, timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.time() > deadline:
                raise RuntimeError(f"{command[0]} did not start")
            time.sleep(0.3)
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()


@contextlib.contextmanager
def record_requests(port: int) -> Iterator[list[str]]:
    """A listener on loopback that answers 404 to everything and records each path asked for."""
    seen: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(self.path)
            self.send_error(404)

        do_POST = do_HEAD = do_GET  # noqa: N815

        def log_message(self, *_: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield seen
    finally:
        httpd.shutdown()


def client_from(address: str, base_url: str, **kwargs):
    """An httpx client whose connections come from ``address`` (any of 127.0.0.0/8 on Linux)."""
    import httpx

    return httpx.Client(base_url=base_url, transport=httpx.HTTPTransport(local_address=address), timeout=30, **kwargs)


def gradio_events(client, session_hash: str) -> Iterator[dict]:
    """The messages of a gradio session's queue stream (``/gradio_api/queue/data``)."""
    import json

    with client.stream("GET", "/gradio_api/queue/data", params={"session_hash": session_hash}) as response:
        for line in response.iter_lines():
            if line.startswith("data:"):
                yield json.loads(line[5:])


def gradio_join(
    client, fn_index: int, data: list, *, trigger_id: int, event_data: dict | None = None, session: str | None = None
) -> dict:
    """Run one gradio event the way the page does (queue/join, then the queue stream); return its last message.

    Returns ``{"status": <join status>}`` when the join itself is refused.
    """
    import uuid

    session = session or uuid.uuid4().hex
    body = {"data": data, "fn_index": fn_index, "trigger_id": trigger_id, "session_hash": session}
    joined = client.post("/gradio_api/queue/join", json={**body, "event_data": event_data})
    if joined.status_code != 200:
        return {"status": joined.status_code}
    for message in gradio_events(client, session):
        if message.get("msg") == "process_completed":
            return message
    return {}


def gradio_call(client, api_name: str, data: list) -> tuple[str, object]:
    """Call a named gradio endpoint over its HTTP API; return ``(last event name, its data)``.

    The name is ``"http <status>"`` when the call itself is refused.
    """
    import json

    started = client.post(f"/gradio_api/call/{api_name}", json={"data": data})
    if started.status_code != 200:
        return f"http {started.status_code}", started.text
    event, payload = "", None
    with client.stream("GET", f"/gradio_api/call/{api_name}/{started.json()['event_id']}") as response:
        for line in response.iter_lines():
            if line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                text = line[5:].strip()
                payload = json.loads(text) if text and text != "null" else None
    return event, payload
