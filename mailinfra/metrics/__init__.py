"""Delivery metrics of a host in Prometheus format: its MTA's own log and queues, labelled from the plan.

- mailinfra.metrics.labels: the pure part, what the exporter is told (transport -> stream, pool, IP, sending
  domain, provider; recipient domain -> provider; the instances' logs and queues), rendered into the host's
  files with its systemd unit (mailinfra.metrics.render).
- mailinfra.metrics.exporter: the counters and gauges (prometheus-client) fed by mailinfra.mta.maillog.
- `python3 -m mailinfra.metrics --config /etc/mailinfra/metrics.json`: the host service.

Metric names are a contract (the placement work and `mailinfra status` read them): see METRICS in exporter.
"""
