"""Jobs sent as batches (OpenAI's ``/v1/files`` + ``/v1/batches``): half the price and no
per-minute limits, answered within the completion window instead of at once.

An endpoint marked ``use_batches`` gets its queued jobs collected into one JSONL of chat
requests (``custom_id`` is the job's idempotency key), uploaded, and sent as a batch; the
batch is polled (the beat task ``poll_batches``), and once it has ended its output and error
files are read and every result written into its job, exactly once, through the same answer
handling as a streamed answer (the kind's ``on_answer``). What a batch did not answer (it
expired, was cancelled, a line failed) goes into the next batch, up to
LLM_BATCH_MAX_ATTEMPTS batches, then the job fails with the reason.

Ownership is the engine's: while a job is in a batch it is ``running`` with the batch's
``run_id``, and every write of a result is a compare-and-set on that owner, so that a poller
killed mid-ingestion and run again skips the jobs it already wrote, and a job cancelled
meanwhile is never written. ``kinds`` says what a job kind adds; ``flow`` is the rest.
"""
