"""The lab: the planned topology running for real on one machine, inside a network namespace.

An I/O edge (like drift): it starts Knot, Postfix, OpenDKIM and simulated mailbox providers as
real processes. Everything listens on addresses inside the lab's own namespace; nothing leaves it.
"""
