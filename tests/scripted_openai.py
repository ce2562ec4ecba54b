"""A scripted OpenAI-compatible server on 127.0.0.1, and a listener that records requests.

No real model can be made to say a given thing on cue; where a test needs that (a model that
obeys a hostile document, a provider that bills), this server plays it over real HTTP, so the
app's OpenAI client, streaming and billing are the real ones.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

USAGE = {"prompt_tokens": 50, "completion_tokens": 40, "total_tokens": 90}


class Listener:
    """An HTTP server on a free loopback port that records every path requested from it."""

    def __init__(self, reply: Any = None) -> None:
        self.paths: list[str] = []
        paths, answer = self.paths, reply

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                paths.append(self.path)
                self.send_response(200)
                self.end_headers()

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length") or 0))
                paths.append(self.path)
                if answer is None:
                    self.send_response(200)
                    self.end_headers()
                    return
                answer(self, json.loads(body or b"{}"))

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def scripted_model(text: str, finish_reason: str = "stop", word_delay_s: float = 0.0):
    """Answers every chat completion with `text`, streamed word by word as OpenAI does, ending
    with `finish_reason` ("length": the model stopped at its token limit); `word_delay_s`
    between words makes a stream slow enough to interrupt."""

    def answer(handler: BaseHTTPRequestHandler, request: dict[str, Any]) -> None:
        base = {"id": "chatcmpl-1", "created": 0, "model": request.get("model", "scripted")}
        if not request.get("stream"):
            payload = json.dumps(
                {
                    **base,
                    "object": "chat.completion",
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": finish_reason,
                        }
                    ],
                    "usage": USAGE,
                }
            ).encode()
            handler.send_response(200)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.end_headers()
        chunk = {**base, "object": "chat.completion.chunk"}
        words = text.split(" ")
        for number, word in enumerate(words):
            piece = word if number == len(words) - 1 else word + " "
            event = {**chunk, "choices": [{"index": 0, "delta": {"content": piece}}]}
            try:
                handler.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
            except OSError:
                return  # the client closed the stream: a reader stopped the answer
            time.sleep(word_delay_s)
        end = {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": finish_reason}]}
        usage = {
            **chunk,
            "choices": [],
            "usage": USAGE,
        }
        for event in (end, usage):
            handler.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        handler.wfile.write(b"data: [DONE]\n\n")

    return answer
