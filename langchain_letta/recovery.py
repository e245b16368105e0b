"""The rest of a cut stream: resumed from a background run, or read from a run's store.

A background run's stream resumes from its last `seq_id`. A foreground run goes on
when its client goes away, so it is waited for and what it stored is yielded as the
rest of the stream, skipping what the stream already showed.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Iterator
from typing import TYPE_CHECKING, Any

import httpx
import letta_client

from langchain_letta.errors import LettaConnectionError, LettaRunError, translate_error
from langchain_letta.events import GarbledStreamError, aiter_events, iter_events, letta_models
from langchain_letta.outcomes import raise_if_failed, still_running, unrecovered
from langchain_letta.progress import StreamProgress, closing_events
from langchain_letta.runs import RUNNING, Runs
from langchain_letta.steps import ResumeAttempts

if TYPE_CHECKING:
    from langchain_letta.conversation import Conversations

__all__ = ["DROPS", "Recovery"]

DROPS = (httpx.TransportError, letta_client.APIConnectionError)
"""What a dropped connection raises."""
_BROKEN = (*DROPS, GarbledStreamError, letta_client.NotFoundError)  # 404: run not saved yet
_RUN_MESSAGES = 1000


class Recovery:
    """Yields the rest of a turn's stream after it was cut, sync and async."""

    def __init__(self, conversations: Conversations, runs: Runs) -> None:
        self._conversations = conversations
        self._runs = runs

    def resume(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        progress: StreamProgress,
        dropped: BaseException,
    ) -> Iterator[Any]:
        """Resume a background run's stream from its last `seq_id` until its end."""
        attempts = ResumeAttempts(progress, dropped)
        messages_api = self._conversations.send_client.conversations.messages
        while (pause := attempts.next_pause()) is not None:
            time.sleep(pause)
            try:
                with messages_api.with_streaming_response.stream(
                    conversation_id, **progress.resume_args(messages)
                ) as response:
                    yield from progress.track(iter_events(response))
                attempts.ended()
            except _BROKEN as drop:
                attempts.broke(drop)
            except Exception as error:
                raise translate_error(error) from error
        attempts.check()

    async def aresume(
        self,
        conversation_id: str,
        messages: list[dict[str, Any]],
        progress: StreamProgress,
        dropped: BaseException,
    ) -> AsyncGenerator[Any, None]:
        """Async twin of `resume`."""
        attempts = ResumeAttempts(progress, dropped)
        messages_api = self._conversations.async_send_client.conversations.messages
        while (pause := attempts.next_pause()) is not None:
            await asyncio.sleep(pause)
            try:
                async with messages_api.with_streaming_response.stream(
                    conversation_id, **progress.resume_args(messages)
                ) as response:
                    async for event in progress.atrack(aiter_events(response)):
                        yield event
                attempts.ended()
            except _BROKEN as drop:
                attempts.broke(drop)
            except Exception as error:
                raise translate_error(error) from error
        attempts.check()

    def recover(self, conversation_id: str, progress: StreamProgress, run_id: str) -> Iterator[Any]:
        """Yield what run `run_id` stored that the stream did not show, once it ended."""
        try:
            run = self._runs.wait_run(run_id)
            if run.status in RUNNING:
                raise still_running(run_id, self._conversations.busy_timeout)
            runs_api = self._conversations.send_client.runs
            response = runs_api.messages.with_raw_response.list(
                run_id, order="asc", limit=_RUN_MESSAGES
            )
            items = letta_models(response.json())
            usage = runs_api.usage.retrieve(run_id)
        except (LettaConnectionError, LettaRunError):
            raise
        except Exception as error:
            raise unrecovered(error, stored=True) from error
        yield from progress.track(progress.unseen(items))
        yield from progress.track(closing_events(run, usage))
        raise_if_failed(run, conversation_id)

    async def arecover(
        self, conversation_id: str, progress: StreamProgress, run_id: str
    ) -> AsyncGenerator[Any, None]:
        """Async twin of `recover`."""
        try:
            run = await self._runs.await_run(run_id)
            if run.status in RUNNING:
                raise still_running(run_id, self._conversations.busy_timeout)
            runs_api = self._conversations.async_send_client.runs
            response = await runs_api.messages.with_raw_response.list(
                run_id, order="asc", limit=_RUN_MESSAGES
            )
            items = letta_models(await response.json())
            usage = await runs_api.usage.retrieve(run_id)
        except (LettaConnectionError, LettaRunError):
            raise
        except Exception as error:
            raise unrecovered(error, stored=True) from error
        for event in progress.track(progress.unseen(items)):
            yield event
        for event in progress.track(closing_events(run, usage)):
            yield event
        raise_if_failed(run, conversation_id)
