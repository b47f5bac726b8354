"""The host's automatic response to a softening or blocked pool (issue 14), after KumoMTA's Traffic Shaping
Automation and PowerMTA's backoff mode: a service reads each pool instance's Postfix log, matches the
receivers' replies against rules rendered from the plan per provider, and slows the pool for that provider,
suspends it, or moves its mail to the stream's declared route for a cool-down, then returns.

- rules.py: the reply patterns (data) and what each one does
- plan.py: the service's configuration, from the plan (pure)
- logline.py: the receiver's reply of a delivery line (the line itself is read by mailinfra.mta.maillog)
- engine.py: the state machine (pure, clock given)
- postfix.py: an action as `postconf -e` + `postfix reload` on the pool's instance
- service.py: the loop, the one-line action log and the Prometheus counters
"""
