"""Rollouts: sampling a policy model on the problem bank, verifying each sample, and what the
samples say of each problem (see ``expansion.models.rollouts``)."""
