"""Developer scripts: the local Letta stack (letta_stack) and the fake LLM (fake_llm)."""
