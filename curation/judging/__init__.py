"""The step judge: an LLM that pre-rates a trace's steps, through expansion's job engine."""
