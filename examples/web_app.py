"""A small multi-user chat server: every user gets their own thread on one Letta agent.

    python examples/web_app.py --agent agent-... [--base-url URL] [--port 8000]
    # or: LETTA_AGENT_ID=agent-... uvicorn examples.web_app:app

``POST /chat/{user}`` with ``{"message": "..."}`` streams the reply as server-sent events
(``data: {"text": ...}`` per token, then ``event: done``); ``GET /history/{user}`` returns
the user's thread as JSON; ``GET /`` is a tiny page to try it in a browser. The user name
is the session key, so each user's conversation is created on first use and found again
after a restart. Needs the ``examples`` extra (``pip install 'langchain-letta[examples]'``).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Path
from fastapi.responses import HTMLResponse, StreamingResponse
from langchain_core.messages import BaseMessage
from pydantic import BaseModel, Field

from langchain_letta import ChatLetta, LettaChatMessageHistory, LettaInputError

User = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.@-]{1,64}$")]  # the session key


class ChatRequest(BaseModel):
    message: str = Field(min_length=1, max_length=20_000)


def sse(data: dict[str, Any], event: str | None = None) -> str:
    """One server-sent event; JSON data keeps newlines in the text safe."""
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data)}\n\n"


def as_json(message: BaseMessage) -> dict[str, Any]:
    return {"id": message.id, "role": message.type, "text": message.text}


def create_app(agent_id: str, base_url: str | None = None) -> FastAPI:
    """The app for one agent; ``base_url`` defaults to ``$LETTA_BASE_URL``."""
    model = ChatLetta(agent_id=agent_id, base_url=base_url, stream_tokens=True)
    app = FastAPI(title="langchain-letta chat")

    @app.get("/", response_class=HTMLResponse)
    async def page() -> str:
        return PAGE

    @app.post("/chat/{user}")
    async def chat(user: User, request: ChatRequest) -> StreamingResponse:
        config = {"configurable": {"session_id": user}}

        async def events() -> AsyncIterator[str]:
            try:
                async for chunk in model.astream(request.message, config=config):
                    if chunk.text:
                        yield sse({"text": chunk.text})
                yield sse({"user": user}, event="done")
            except Exception as error:  # the status is already sent: report in-stream
                yield sse({"error": f"{type(error).__name__}: {error}"}, event="error")

        return StreamingResponse(
            events(),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    @app.get("/history/{user}")
    async def history(user: User) -> dict[str, Any]:
        thread = LettaChatMessageHistory(session_id=user, agent_id=agent_id, base_url=base_url)
        try:
            messages = await thread.aget_messages()
        except LettaInputError as error:
            raise HTTPException(status_code=400, detail=str(error)) from error
        return {
            "user": user,
            "conversation_id": thread.conversation_id if messages else None,  # resolved above
            "messages": [as_json(message) for message in messages],
        }

    return app


PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>Letta chat</title>
<style>
 body { font-family: sans-serif; max-width: 46rem; margin: 2rem auto; }
 #log p { margin: .4rem 0; white-space: pre-wrap; } .human { color: #2458a6; }
 form { display: flex; gap: .5rem; } #message { flex: 1; }
</style></head>
<body>
<h1>Letta chat</h1>
<form id="form">
  <input id="user" value="alice" size="10" aria-label="user">
  <input id="message" placeholder="Message" autofocus aria-label="message">
  <button>Send</button>
</form>
<div id="log"></div>
<script>
const log = document.getElementById("log");
const user = document.getElementById("user");
function line(role, text) {
  const p = document.createElement("p");
  p.className = role; p.textContent = (role === "human" ? "You: " : "Agent: ") + text;
  log.append(p); return p;
}
async function loadHistory() {
  log.replaceChildren();
  const r = await fetch(`/history/${encodeURIComponent(user.value)}`);
  for (const m of (await r.json()).messages || []) line(m.role, m.text);
}
user.addEventListener("change", loadHistory);
document.getElementById("form").addEventListener("submit", async (e) => {
  e.preventDefault();
  const input = document.getElementById("message"), text = input.value.trim();
  if (!text) return;
  input.value = ""; line("human", text);
  const reply = line("ai", "");
  const r = await fetch(`/chat/${encodeURIComponent(user.value)}`, {
    method: "POST", headers: {"Content-Type": "application/json"},
    body: JSON.stringify({message: text}),
  });
  const reader = r.body.getReader(), decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, {stream: true});
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {
      const event = buffer.slice(0, end); buffer = buffer.slice(end + 2);
      const data = event.split("\\n").find((l) => l.startsWith("data: "));
      const payload = data ? JSON.parse(data.slice(6)) : {};
      if (payload.text) reply.textContent += payload.text;
      if (payload.error) reply.textContent += " [" + payload.error + "]";
    }
  }
});
loadHistory();
</script>
</body></html>
"""


def _app_from_env() -> FastAPI | None:
    agent_id = os.environ.get("LETTA_AGENT_ID")
    return create_app(agent_id) if agent_id else None


app = _app_from_env()  # for `uvicorn examples.web_app:app`


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--agent", default=os.environ.get("LETTA_AGENT_ID"), required=False)
    parser.add_argument("--base-url", default=os.environ.get("LETTA_BASE_URL"))
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args()
    if not args.agent:
        parser.error("give --agent or set LETTA_AGENT_ID")
    uvicorn.run(create_app(args.agent, args.base_url), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
