"""LangGraph long-term store over a Letta agent's memory (needs the `langgraph` extra)."""

from langchain_letta.store.letta_store import ARCHIVAL_NAMESPACE, BLOCKS_NAMESPACE, LettaStore

__all__ = ["ARCHIVAL_NAMESPACE", "BLOCKS_NAMESPACE", "LettaStore"]
