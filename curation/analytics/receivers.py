from .profiles import profile_trace


def profile_succeeded_trace(sender, trace_id: int, **kwargs) -> None:
    """A trace that succeeds is profiled at once (`analytics_refresh` repairs any missed)."""
    profile_trace(trace_id=trace_id)
