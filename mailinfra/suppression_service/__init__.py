"""The suppression lookup service of a sending host: Postfix asks it at RCPT whether a recipient is suppressed.

- `socketmap.py`: Postfix's socketmap protocol (socketmap_table(5)), netstrings.
- `replica.py`: the host's local copy of the suppression entries (SQLite, one row per address and feed).
- `feed.py`: the change feed (the bounce host serves it, every host polls it) and its authentication.
- `service.py`: the server (a Unix socket for Postfix) and the poller, `python -m mailinfra.suppression_service`.

Why a local replica fed by deltas rather than a remote lookup per RCPT: a lookup stays local (sub-millisecond,
no network on the injection path), and a new entry reaches every host within one poll (1 s) of being stored.
"""
