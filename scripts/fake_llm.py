#!/usr/bin/env python3
"""Deterministic OpenAI-compatible fake LLM for tests (stdlib only).

Serves ``GET /v1/models`` (one model, default id ``fake-llm``),
``POST /v1/chat/completions`` (JSON, or SSE when ``stream`` is true) and
``POST /v1/embeddings`` (see ``embed``: hashed bag of words, so texts that
share words get close vectors and archival search finds them).
What it answers is chosen from trigger tokens in square brackets in the
LAST user message of the request:

``(no trigger)``            ``Echo: <user text without triggers>``
``[memory]``                ``Memory human=<value>; persona=<value>`` from the
                            memory blocks of the system prompt it was shown
``[memory:<label>]``        ``Memory <label>=<value>``
``[slow:<seconds>]``        waits that long (spread over the chunks when streaming)
``[tool:<name> <json>]``    an assistant tool call to ``<name>`` with ``<json>`` args
``[tool]``                  a call to the first non-Letta tool of the request,
                            arguments synthesized from its JSON schema
``[error]`` / ``[ratelimit]`` HTTP 500 / 429 with an OpenAI-style error body
``[long:<n>]``              a reply of n words
``[think]``                 also sends ``reasoning_content``

When the last message of the request is a tool result the reply is
``Tool said: <first 200 chars of the result>``. A ``tool_choice`` that
forces a tool (``required`` or a named function) makes it call that tool
without a trigger. Without a trigger, a user message that names a non-Letta
tool of the request (its name, or a 4+ letter ``_``-separated part of it,
as a word), or says "use the tool" / "using the tool", calls that tool
(the first one for "the tool"); its string arguments take the first
'quoted' text of the message when there is one. Usage numbers are deterministic: prompt tokens are the
prompt's characters // 4, completion tokens the number of streamed pieces.

Run: ``python3 fake_llm.py --port 8399``. Env ``FAKE_LLM_MODEL`` sets the
model id, ``FAKE_LLM_LOG`` a file that gets one line per request.

A second model, ``<id>-slow``, answers the same way after ``FAKE_LLM_SLOW_DELAY``
seconds (1) per completion, like a real LLM's turn: benchmarks weigh client overhead
against it.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import math
import os
import re
import struct
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MODEL_ID = os.environ.get("FAKE_LLM_MODEL", "fake-llm")
SLOW_MODEL_ID = f"{MODEL_ID}-slow"
SLOW_DELAY = float(os.environ.get("FAKE_LLM_SLOW_DELAY", "1"))
CONTEXT_WINDOW = 128000
LETTA_BUILTIN_TOOLS = frozenset(
    {
        "conversation_search",
        "memory_insert",
        "memory_replace",
        "memory_rethink",
        "memory",
        "send_message",
    }
)
TRIGGER_START = re.compile(r"\[(memory|slow|tool|error|ratelimit|long|think)\b")
TOOL_RESULT_CHARS = 200
EMBEDDING_DIM = 1536  # text-embedding-3-small, the handle the stack's agents use
_LOG_LOCK = threading.Lock()


# --------------------------------------------------------------------------- triggers


@dataclass
class Triggers:
    """Trigger tokens found in the user's text, and the text without them."""

    text: str = ""
    memory: bool = False
    memory_label: str | None = None
    slow: float = 0.0
    tool: bool = False
    tool_name: str | None = None
    tool_args: dict[str, Any] = field(default_factory=dict)
    error: bool = False
    ratelimit: bool = False
    long_words: int | None = None
    think: bool = False


def _parse_tool_trigger(text: str, pos: int, triggers: Triggers) -> int:
    """Parse ``[tool]`` or ``[tool:<name> <json>]`` starting after ``[tool``; return the end."""
    triggers.tool = True
    if text.startswith("]", pos):
        return pos + 1
    match = re.compile(r":\s*([A-Za-z0-9_\-]+)\s*").match(text, pos)
    if not match:
        raise ValueError("bad [tool] trigger")
    triggers.tool_name = match.group(1)
    pos = match.end()
    if text.startswith("{", pos):
        args, pos = json.JSONDecoder().raw_decode(text, pos)
        triggers.tool_args = args
    end = text.index("]", pos)
    return end + 1


def _apply_simple_trigger(name: str, arg: str | None, triggers: Triggers) -> None:
    """Record one bracket trigger other than ``[tool...]``."""
    if name == "memory":
        triggers.memory, triggers.memory_label = True, arg or None
    elif name == "slow":
        triggers.slow = float(arg or 1)
    elif name == "long":
        triggers.long_words = max(1, int(arg or 50))
    else:
        setattr(triggers, name, True)


def parse_triggers(text: str) -> Triggers:
    """Find every trigger in ``text``; malformed triggers are kept as plain text."""
    triggers = Triggers()
    kept: list[str] = []
    pos = 0
    for match in TRIGGER_START.finditer(text):
        if match.start() < pos:
            continue
        try:
            if match.group(1) == "tool":
                end = _parse_tool_trigger(text, match.end(), triggers)
            else:
                arg_match = re.compile(r"(?::([^\]]*))?\]").match(text, match.end())
                if not arg_match:
                    continue
                _apply_simple_trigger(match.group(1), arg_match.group(1), triggers)
                end = arg_match.end()
        except ValueError:
            continue
        kept.append(text[pos : match.start()])
        pos = end
    kept.append(text[pos:])
    triggers.text = re.sub(r"\s+", " ", "".join(kept)).strip()
    return triggers


# --------------------------------------------------------------------------- request reading


def content_text(content: Any) -> str:
    """Plain text of an OpenAI message ``content`` (string or list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def unwrap_user_text(text: str) -> str:
    """Undo the JSON envelope some agents put around user text (``{"message": ...}``)."""
    stripped = text.strip()
    if stripped.startswith("{"):
        try:
            data = json.loads(stripped)
        except ValueError:
            return text
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return data["message"]
    return text


def last_user_text(messages: list[dict[str, Any]]) -> str:
    """Text of the last ``user`` message, unwrapped."""
    for message in reversed(messages):
        if message.get("role") == "user":
            return unwrap_user_text(content_text(message.get("content")))
    return ""


def system_prompt(messages: list[dict[str, Any]]) -> str:
    """All system/developer message text of the request."""
    return "\n".join(
        content_text(m.get("content")) for m in messages if m.get("role") in ("system", "developer")
    )


def memory_blocks(prompt: str) -> list[tuple[str, str]]:
    """``(label, value)`` of each memory block in Letta's compiled system prompt.

    Letta renders blocks inside ``<memory_blocks>`` as ``<label>`` elements that
    contain a ``<value>`` element.
    """
    section = re.search(r"<memory_blocks>(.*?)</memory_blocks>", prompt, re.S)
    body = section.group(1) if section else prompt
    block = re.compile(r"<([A-Za-z0-9_\-]+)>\s*(?:(?!</\1>).)*?<value>\n?(.*?)\n?</value>", re.S)
    return [(m.group(1), m.group(2)) for m in block.finditer(body)]


def tool_name(tool: dict[str, Any]) -> str:
    """Name of an OpenAI tool definition."""
    return tool.get("function", {}).get("name", "")


def is_builtin_tool(name: str) -> bool:
    """True for Letta's own tools, which ``[tool]`` skips."""
    return name in LETTA_BUILTIN_TOOLS or name.startswith("archival_memory_")


def forced_tool(body: dict[str, Any]) -> str | None:
    """Name of the tool ``tool_choice`` forces, if it forces one."""
    choice = body.get("tool_choice")
    tools = body.get("tools") or []
    if isinstance(choice, dict):
        return choice.get("function", {}).get("name") or None
    if choice == "required" and tools:
        return first_custom_tool(tools) or tool_name(tools[0])
    return None


def first_custom_tool(tools: list[dict[str, Any]]) -> str | None:
    """First tool of the request that is not a Letta built-in."""
    for tool in tools:
        if not is_builtin_tool(tool_name(tool)):
            return tool_name(tool)
    return None


def sample_from_schema(schema: dict[str, Any], text: str = "hello") -> Any:
    """Deterministic value that satisfies a (simple) JSON schema; strings are ``text``."""
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf", "allOf"):
        if schema.get(key):
            return sample_from_schema(schema[key][0], text)
    kind = schema.get("type", "object")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    samples = {
        "integer": 3,
        "number": 3.0,
        "string": text,
        "boolean": True,
        "array": [],
        "null": None,
    }
    if kind in samples:
        return samples[kind]
    props = schema.get("properties") or {}
    return {name: sample_from_schema(sub, text) for name, sub in props.items()}


def mentioned_tool(tools: list[dict[str, Any]], text: str) -> str | None:
    """The first non-Letta tool that ``text`` names, or the first one for "use the tool"."""
    lowered = text.lower()
    custom = [tool_name(tool) for tool in tools if not is_builtin_tool(tool_name(tool))]
    for name in custom:
        words = re.findall(r"[A-Z]?[a-z]+|[A-Z]+(?![a-z])|\d+", name)
        parts = [name.lower(), *(word.lower() for word in words if len(word) >= 4)]
        if any(re.search(rf"(?<![\w]){re.escape(part)}(?![\w])", lowered) for part in parts):
            return name
    if custom and re.search(r"\b(use|using) the tool\b", lowered):
        return custom[0]
    return None


def quoted_text(text: str) -> str | None:
    """The first 'single' or "double" quoted text of ``text``."""
    match = re.search(r"'([^']+)'|\"([^\"]+)\"", text)
    return (match.group(1) or match.group(2)) if match else None


def tool_schema(tools: list[dict[str, Any]], name: str) -> dict[str, Any]:
    """JSON schema of the parameters of tool ``name`` (empty when unknown)."""
    for tool in tools:
        if tool_name(tool) == name:
            return tool.get("function", {}).get("parameters") or {}
    return {}


# --------------------------------------------------------------------------- replies


@dataclass
class Reply:
    """What the fake answers: text pieces, or one tool call, or an HTTP error."""

    pieces: list[str] = field(default_factory=list)
    tool_name: str | None = None
    tool_args: str = ""
    reasoning: str | None = None
    delay: float = 0.0
    status: int = 200
    error: dict[str, Any] | None = None


def words(text: str) -> list[str]:
    """Split text into word pieces that concatenate back to it."""
    return re.findall(r"\S+\s*", text) or [text]


def error_reply(status: int, kind: str, message: str) -> Reply:
    """An OpenAI-style error reply."""
    return Reply(
        status=status,
        error={"error": {"message": message, "type": kind, "param": None, "code": kind}},
    )


def memory_text(prompt: str, label: str | None) -> str:
    """The ``[memory]`` reply for the blocks found in ``prompt``."""
    blocks = memory_blocks(prompt)
    if label:
        blocks = [b for b in blocks if b[0] == label] or [(label, "<missing>")]
    if not blocks:
        return "Memory <none>"
    return "Memory " + "; ".join(f"{name}={value}" for name, value in blocks)


def tool_call_reply(
    body: dict[str, Any], name: str, args: dict[str, Any] | None, text: str = "hello"
) -> Reply:
    """A reply that calls ``name``; arguments come from its schema when not given."""
    if args is None:
        args = sample_from_schema(tool_schema(body.get("tools") or [], name), text)
    return Reply(tool_name=name, tool_args=json.dumps(args))


def text_reply(body: dict[str, Any], triggers: Triggers) -> Reply:
    """A plain text reply chosen by the triggers."""
    messages = body.get("messages") or []
    if triggers.memory:
        return Reply(pieces=words(memory_text(system_prompt(messages), triggers.memory_label)))
    if triggers.long_words is not None:
        return Reply(
            pieces=[f"word{i} " for i in range(1, triggers.long_words)]
            + [f"word{triggers.long_words}"]
        )
    return Reply(pieces=words(f"Echo: {triggers.text}"))


def choose_reply(body: dict[str, Any]) -> Reply:
    """Decide the whole answer to one chat completion request."""
    messages = body.get("messages") or []
    triggers = parse_triggers(last_user_text(messages))
    if triggers.error:
        return error_reply(500, "server_error", "Fake LLM internal error (triggered by [error])")
    if triggers.ratelimit:
        return error_reply(
            429, "rate_limit_exceeded", "Fake LLM rate limit (triggered by [ratelimit])"
        )
    if messages and messages[-1].get("role") == "tool":
        result = content_text(messages[-1].get("content"))[:TOOL_RESULT_CHARS]
        reply = Reply(pieces=words(f"Tool said: {result}"))
    elif triggers.tool and (triggers.tool_name or first_custom_tool(body.get("tools") or [])):
        name = triggers.tool_name or first_custom_tool(body.get("tools") or [])
        reply = tool_call_reply(body, name, triggers.tool_args if triggers.tool_name else None)
    elif forced_tool(body):
        reply = tool_call_reply(body, forced_tool(body), None)
    elif mentioned_tool(body.get("tools") or [], triggers.text):
        name = mentioned_tool(body.get("tools") or [], triggers.text)
        reply = tool_call_reply(body, name, None, quoted_text(triggers.text) or "hello")
    else:
        reply = text_reply(body, triggers)
    reply.delay = triggers.slow + (SLOW_DELAY if body.get("model") == SLOW_MODEL_ID else 0.0)
    if triggers.think:
        reply.reasoning = "Thinking about: " + (triggers.text or "the request")
    return reply


# --------------------------------------------------------------------------- OpenAI payloads


def completion_id(body: dict[str, Any]) -> str:
    """Deterministic ``chatcmpl-`` id derived from the request."""
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
    return f"chatcmpl-{digest[:24]}"


def usage(body: dict[str, Any], reply: Reply) -> dict[str, int]:
    """Deterministic token usage."""
    prompt_chars = sum(len(content_text(m.get("content"))) for m in body.get("messages") or [])
    prompt = prompt_chars // 4
    completion = len(reply.pieces) if reply.tool_name is None else max(1, len(reply.tool_args) // 4)
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def tool_call(reply: Reply, call_id: str) -> dict[str, Any]:
    """OpenAI ``tool_calls`` entry of a tool call reply."""
    return {
        "id": call_id,
        "type": "function",
        "function": {"name": reply.tool_name, "arguments": reply.tool_args},
    }


def completion_json(body: dict[str, Any], reply: Reply) -> dict[str, Any]:
    """Non-streaming chat completion object."""
    cid = completion_id(body)
    message: dict[str, Any] = {
        "role": "assistant",
        "content": None if reply.tool_name else "".join(reply.pieces),
    }
    if reply.tool_name:
        message["tool_calls"] = [tool_call(reply, "call_" + cid[-24:])]
    if reply.reasoning:
        message["reasoning_content"] = reply.reasoning
    return {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": body.get("model") or MODEL_ID,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": None,
                "finish_reason": "tool_calls" if reply.tool_name else "stop",
            }
        ],
        "usage": usage(body, reply),
    }


def stream_deltas(reply: Reply, call_id: str) -> Iterator[dict[str, Any]]:
    """The ``delta`` objects of a streamed reply, in order."""
    yield {"role": "assistant", "content": ""}
    if reply.reasoning:
        for piece in words(reply.reasoning):
            yield {"reasoning_content": piece}
    if reply.tool_name:
        head = {
            "index": 0,
            "id": call_id,
            "type": "function",
            "function": {"name": reply.tool_name, "arguments": ""},
        }
        yield {"tool_calls": [head]}
        for start in range(0, len(reply.tool_args), 8):
            yield {
                "tool_calls": [
                    {"index": 0, "function": {"arguments": reply.tool_args[start : start + 8]}}
                ]
            }
        return
    for piece in reply.pieces:
        yield {"content": piece}


def stream_chunks(body: dict[str, Any], reply: Reply) -> Iterator[dict[str, Any]]:
    """Every ``chat.completion.chunk`` of a streamed reply, usage chunk included when asked."""
    cid = completion_id(body)
    base = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": body.get("model") or MODEL_ID,
    }
    for delta in stream_deltas(reply, "call_" + cid[-24:]):
        yield {
            **base,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}],
        }
    finish = "tool_calls" if reply.tool_name else "stop"
    yield {
        **base,
        "choices": [{"index": 0, "delta": {}, "logprobs": None, "finish_reason": finish}],
    }
    if (body.get("stream_options") or {}).get("include_usage"):
        yield {**base, "choices": [], "usage": usage(body, reply)}


# --------------------------------------------------------------------------- embeddings


def embedding_words(text: str) -> list[str]:
    """Lowercased words of ``text``, a plural ``s`` dropped (``cats`` and ``cat`` match)."""
    found = re.findall(r"[a-z0-9]+", text.lower())
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in found]


def embed(text: str, dim: int = EMBEDDING_DIM) -> list[float]:
    """Deterministic unit vector of ``text``: each word adds +-1 at a hashed position.

    Texts sharing words get a high cosine similarity, texts sharing none about zero.
    Text with no words gets a fixed vector (never the zero vector, which has no cosine).
    """
    vector = [0.0] * dim
    for word in embedding_words(text) or [""]:
        digest = hashlib.sha256(word.encode()).digest()
        index = int.from_bytes(digest[:4], "little") % dim
        vector[index] += 1.0 if digest[4] & 1 else -1.0
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def embedding_inputs(raw: Any) -> list[str]:
    """The texts of an embeddings request ``input`` (a string, strings, or token ids)."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(isinstance(x, int) for x in raw):
        return [" ".join(f"t{x}" for x in raw)]
    if isinstance(raw, list):
        return [x if isinstance(x, str) else " ".join(f"t{t}" for t in x) for x in raw]
    raise ValueError("input must be a string or a list")


def embeddings_json(body: dict[str, Any]) -> dict[str, Any]:
    """OpenAI ``/v1/embeddings`` response (``encoding_format`` float or base64)."""
    texts = embedding_inputs(body.get("input"))
    dim = int(body.get("dimensions") or EMBEDDING_DIM)
    data = []
    for index, text in enumerate(texts):
        vector: Any = embed(text, dim)
        if body.get("encoding_format") == "base64":
            vector = base64.b64encode(struct.pack(f"<{dim}f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": vector})
    tokens = sum(len(embedding_words(t)) for t in texts)
    return {
        "object": "list",
        "data": data,
        "model": body.get("model") or "text-embedding-3-small",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


# --------------------------------------------------------------------------- HTTP


def log_request(method: str, path: str, summary: str) -> None:
    """Append one line to ``$FAKE_LLM_LOG`` when it is set."""
    target = os.environ.get("FAKE_LLM_LOG")
    if not target:
        return
    line = f"{time.strftime('%H:%M:%S')} {method} {path} {summary}\n"
    with _LOG_LOCK, open(target, "a", encoding="utf-8") as handle:
        handle.write(line)


def summarize(body: dict[str, Any], reply: Reply) -> str:
    """Short description of a request and the chosen answer for the log."""
    messages = body.get("messages") or []
    user = last_user_text(messages).replace("\n", " ")[:80]
    last_role = messages[-1].get("role") if messages else None
    answer = (
        f"error {reply.status}"
        if reply.error
        else (f"tool {reply.tool_name}" if reply.tool_name else "text")
    )
    return (
        f"stream={bool(body.get('stream'))} msgs={len(messages)} last={last_role} "
        f"tools={len(body.get('tools') or [])} tool_choice={body.get('tool_choice')!r} user={user!r} -> {answer}"
    )


class FakeLLMHandler(BaseHTTPRequestHandler):
    """Routes the two OpenAI endpoints the fake serves."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        """Silence the default stderr access log."""

    def send_json(self, status: int, payload: dict[str, Any]) -> None:
        """Send one JSON response."""
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        """``GET /v1/models`` (and ``/v1/models/<id>``)."""
        path = self.path.split("?")[0].rstrip("/")
        log_request("GET", self.path, "")
        models = {
            model_id: {
                "id": model_id,
                "object": "model",
                "created": 0,
                "owned_by": "fake-llm",
                "context_length": CONTEXT_WINDOW,
            }
            for model_id in (MODEL_ID, SLOW_MODEL_ID)
        }
        if path == "/v1/models":
            self.send_json(200, {"object": "list", "data": list(models.values())})
        elif path.startswith("/v1/models/") and path[len("/v1/models/") :] in models:
            self.send_json(200, models[path[len("/v1/models/") :]])
        else:
            self.send_json(
                404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}}
            )

    def do_POST(self) -> None:
        """``POST /v1/chat/completions`` and ``POST /v1/embeddings``."""
        path = self.path.split("?")[0].rstrip("/")
        length = int(self.headers.get("Content-Length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except ValueError:
            self.send_json(
                400, {"error": {"message": "invalid JSON", "type": "invalid_request_error"}}
            )
            return
        if path == "/v1/embeddings":
            self.send_embeddings(body)
            return
        if path != "/v1/chat/completions":
            log_request("POST", self.path, "unsupported")
            self.send_json(
                404, {"error": {"message": f"no route {path}", "type": "invalid_request_error"}}
            )
            return
        reply = choose_reply(body)
        log_request("POST", self.path, summarize(body, reply))
        if reply.error:
            time.sleep(reply.delay)
            self.send_json(reply.status, reply.error)
        elif body.get("stream"):
            self.send_stream(body, reply)
        else:
            time.sleep(reply.delay)
            self.send_json(200, completion_json(body, reply))

    def send_embeddings(self, body: dict[str, Any]) -> None:
        """Answer one embeddings request (400 for an ``input`` it cannot read)."""
        try:
            payload = embeddings_json(body)
        except (ValueError, TypeError) as error:
            log_request("POST", self.path, f"embeddings error {error}")
            self.send_json(400, {"error": {"message": str(error), "type": "invalid_request_error"}})
            return
        log_request("POST", self.path, f"embeddings n={len(payload['data'])}")
        self.send_json(200, payload)

    def send_stream(self, body: dict[str, Any], reply: Reply) -> None:
        """Send the reply as SSE chunks, spreading ``reply.delay`` over them."""
        chunks = list(stream_chunks(body, reply))
        pause = reply.delay / len(chunks)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")
        self.end_headers()
        self.close_connection = True
        try:
            for chunk in chunks:
                time.sleep(pause)
                self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                self.wfile.flush()
            self.wfile.write(b"data: [DONE]\n\n")
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


def serve(host: str, port: int) -> None:
    """Serve until interrupted."""
    server = ThreadingHTTPServer((host, port), FakeLLMHandler)
    server.daemon_threads = True
    print(f"fake LLM serving {MODEL_ID} on http://{host}:{port}/v1", file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


def main() -> None:
    """Command line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("FAKE_LLM_PORT", "8399")))
    args = parser.parse_args()
    serve(args.host, args.port)


if __name__ == "__main__":
    main()
