"""Signals other apps listen to; light, so that connecting to them loads nothing heavy."""

from django.dispatch import Signal

# Sent with trace_id once a trace has succeeded (by the run that finished it, once).
trace_succeeded = Signal()
# Sent with trace_id when a succeeded trace's checks were computed again (answer rechecks).
trace_checks_changed = Signal()
