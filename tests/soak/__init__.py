"""``make soak``: the real daemon, real processes, a seeded schedule of random faults, and the
invariants users rely on checked from the evidence afterwards (see ``runner`` and ``invariants``).
"""
