#!/usr/bin/env python3
"""A local stand-in for the LLM providers, speaking their exact wire formats from recorded
payloads (tests/fixtures/formats/). It answers OpenAI chat/completions (plain and SSE, with
or without the usage chunk as OpenAI does), Azure OpenAI deployment routes and Anthropic
messages, and remembers what it received so tests can check what the gateway forwarded.

Special models: "slow-model" answers after 3 s; "error-model" answers 500 (JSON);
"overloaded-model" answers 503 in plain text; "cut-model" streams half the events and
closes the connection; "drip-model" streams one event every 0.3 s."""
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

FORMATS = Path(__file__).resolve().parents[1] / "fixtures" / "formats"
OPENAI_JSON = (FORMATS / "openai-api" / "chat_completions_nonstream_gpt-4o-mini.json").read_bytes()
OPENAI_SSE = (FORMATS / "openai-api" / "chat_completions_stream_include_usage_gpt-4.sse").read_bytes()
ANTHROPIC_JSON = (FORMATS / "anthropic" / "messages_nonstream_parse.json").read_bytes()
ANTHROPIC_SSE = (FORMATS / "anthropic" / "messages_stream_claude-sonnet-4-5.sse").read_bytes()
EMBEDDINGS_JSON = (FORMATS / "openai-api" / "embeddings_with_dimensions.json").read_bytes()


def sse_events(data):
    text = data.replace(b"\r\n", b"\n")
    return [e + b"\n\n" for e in text.split(b"\n\n") if e.strip()]


def without_usage_chunk(data):
    """OpenAI's stream as sent when the client did not ask for usage."""
    return b"".join(e for e in sse_events(data) if b'"choices":[]' not in e)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        request = json.loads(body) if body else {}
        self.server.received.append({"path": self.path, "headers": dict(self.headers), "body": request})
        model = request.get("model", "")
        if model == "slow-model":
            time.sleep(3)
        # A test that needs requests in flight together asks for each answer to be held.
        metadata = request.get("metadata") if isinstance(request, dict) else None
        if isinstance(metadata, dict) and "mock_hold_s" in metadata:
            time.sleep(float(metadata["mock_hold_s"]))
        if model == "error-model":
            return self.reply(500, b'{"error":{"message":"upstream exploded","type":"server_error"}}')
        if model == "overloaded-model":
            return self.reply(503, b"upstream overloaded, try later\n", "text/plain; charset=utf-8")
        path = self.path.split("?")[0]
        if path.endswith("/embeddings"):
            return self.reply(200, EMBEDDINGS_JSON)
        if path.endswith("/messages"):
            if request.get("stream"):
                return self.stream(sse_events(ANTHROPIC_SSE))
            return self.reply(200, ANTHROPIC_JSON)
        if re.search(r"/chat/completions$", path):
            if request.get("stream"):
                wants_usage = (request.get("stream_options") or {}).get("include_usage")
                data = OPENAI_SSE if wants_usage else without_usage_chunk(OPENAI_SSE)
                events = sse_events(data)
                if model == "cut-model":
                    return self.stream(events[: len(events) // 2], cut=True)
                return self.stream(events, gap=0.3 if model == "drip-model" else 0)
            if model == "garbled-model":  # usage readable, a value elsewhere broken
                return self.reply(200, OPENAI_JSON.replace(b'"finish_reason": "stop"', b'"finish_reason": stop'))
            return self.reply(200, OPENAI_JSON)
        self.reply(404, b'{"error":{"message":"no such route"}}')

    def reply(self, status, payload, content_type="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def stream(self, events, cut=False, gap=0):
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for e in events:
            if gap:
                time.sleep(gap)
            self.wfile.write(b"%x\r\n%s\r\n" % (len(e), e))
            self.wfile.flush()
        if cut:
            self.close_connection = True
            return
        self.wfile.write(b"0\r\n\r\n")


class Server(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        pass  # clients that go away mid-answer (timeouts, cut streams) are part of the tests


def start(certfile=None, idle_timeout=None):
    """Starts the mock on a free loopback port; returns the server (server.server_port).
    With a certificate (PEM with its key) it speaks HTTPS. With idle_timeout (seconds) it
    closes keep-alive connections that stay idle that long, as providers do."""
    handler = Handler if idle_timeout is None else type("IdleHandler", (Handler,), {"timeout": idle_timeout})
    server = Server(("127.0.0.1", 0), handler)
    if certfile:
        import ssl
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(certfile)
        server.socket = context.wrap_socket(server.socket, server_side=True)
    server.daemon_threads = True
    server.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
