"""The monitoring host's files from the plan (pure): Prometheus's scrape config and retention, the alert
rules per pool x receiving provider, Alertmanager's routing. Checked by the real promtool and amtool in
tests (tests/monitoring); provisioned by components/monitoring_host.py; previewed under monitoring/."""
