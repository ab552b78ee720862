"""The issue wing: from one iteration's results to the tracker, one root cause one issue.

The loop hands it one ``records.IterationReport`` per iteration through ``desk.IssueDesk``
and knows nothing else of it. Inside, each module imports only those listed above it:

- ``records``: the plain data (iteration report, cluster records, issue actions, triage context).
- ``tracker``: the tracker protocol, its ``Issue`` and the hidden fingerprint marker.
- ``text``: the words of issues and comments.
- ``triage``: pure decisions: clusters, new/persisting/fixed/flaky, the actions to take.
- ``outbox``: writes the tracker could not take yet, kept on disk in order.
- ``deliver``: ``apply`` the actions to a tracker, outbox first, never a duplicate.
- ``local`` / ``github``: the two trackers.
- ``desk``: the per-iteration stage the loop calls; makes the tracker the config asks for.
"""
