"""The engine every kind of LLM job runs on (expansion today; a judge rating steps and
rollouts sampling a model next).

A job is a row with the lifecycle fields ``Trace`` has (status from ``Status``, run_id,
heartbeat_at, started_at, finished_at, attempts, error_kind, error_message, request) and the
fields of what was paid for (response, content, reasoning, finish_reason, model_reported,
prompt_tokens, completion_tokens, latency_ms, cost, progress_tokens). ``lifecycle`` claims
such a row exactly once, keeps its heartbeat, finds stalled ones and cancels; ``engine`` runs
it attempt by attempt under the endpoint's shared limits. A new kind adds its messages and
what to do with an answer (see ``expansion.running``), nothing else.
"""
