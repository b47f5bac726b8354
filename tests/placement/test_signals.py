"""Provider signals parsed from responses in the providers' formats (both services are unreachable from these
machines: the data files are written in the documented shapes, not fetched).

- Google Postmaster Tools v2: QueryDomainStatsResponse / DomainStat / StatisticValue as documented at
  developers.google.com/workspace/gmail/postmaster/reference/rest/v2/QueryDomainStatsResponse and
  .../v2/MetricDefinition (metric names echo our MetricDefinition.name; intValue is an int64 JSON string).
- Microsoft SNDS data.aspx: Microsoft's own format page was NOT found; the 14-column order follows the
  sndslib client (github.com/undersfx/sndslib `search_ip_status` and its recorded test lines), see
  mailinfra/placement/snds.py.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from mailinfra.placement.metrics import PlacementMetrics
from mailinfra.placement.postmaster import PostmasterFormatError, parse_domain_stats, spam_rates
from mailinfra.placement.snds import SndsFormatError, parse_snds_data

DATA = Path(__file__).parent / "data"


def test_snds_rows_map_onto_ips_and_metrics() -> None:
    rows = parse_snds_data((DATA / "snds-data.csv").read_text())
    assert [(r.ip, r.filter_result, r.complaint_rate, r.complaint_rate_below, r.trap_hits) for r in rows] == [
        ("192.0.2.10", "GREEN", 0.001, True, 0),
        ("192.0.2.11", "YELLOW", 0.004, False, 3),
        ("198.51.100.7", "RED", 0.021, False, 57),
    ]
    assert rows[1].sample_helo == "o11.news.example.com" and rows[2].comments == "Blocked due to user complaints"
    assert (rows[0].rcpt_commands, rows[0].data_commands, rows[0].message_recipients) == (5120, 5118, 5102)
    metrics = PlacementMetrics()
    metrics.record_snds(rows)
    value = metrics.registry.get_sample_value
    assert [value("mailinfra_snds_filter_result", {"ip": r.ip}) for r in rows] == [0, 1, 2]
    assert value("mailinfra_snds_trap_hits", {"ip": "198.51.100.7"}) == 57
    assert value("mailinfra_snds_complaint_rate", {"ip": "192.0.2.11"}) == pytest.approx(0.004)


@pytest.mark.parametrize(("line", "message"), [
    ("192.0.2.10,a,b,1,1,1,GREEN,< 0.1%,,,0,,", "SNDS data line 1: received 13 fields, expected 14"),
    ("192.0.2.10,a,b,1,1,1,BLUE,< 0.1%,,,0,,,", "filter_result: received 'BLUE', expected one of GREEN"),
    ("192.0.2.10,a,b,1,1,1,RED,high,,,0,,,", "complaint_rate: received 'high'"),
    ("o10.example.com,a,b,1,1,1,RED,1%,,,0,,,", "ip_address: received 'o10.example.com'"),
])
def test_snds_refuses_lines_of_another_shape(line: str, message: str) -> None:
    with pytest.raises(SndsFormatError, match=message):
        parse_snds_data(line + "\r\n")


def test_postmaster_v2_spam_rate_is_the_latest_day_per_domain() -> None:
    stats, token = parse_domain_stats((DATA / "gpt-v2-query.json").read_text())
    assert token == "page-2"
    assert {s.metric for s in stats} == {"spam_rate", "auth_success_rate", "delivery_error_count"}
    assert next(s for s in stats if s.metric == "delivery_error_count").value == 17.0  # intValue "17"
    assert stats[0].date == dt.date(2026, 12, 18)
    rates = spam_rates(stats)
    assert rates == {"news.example.com": 0.0041, "tx.example.com": 0.0}
    metrics = PlacementMetrics()
    metrics.record_spam_rates(rates)
    assert metrics.registry.get_sample_value("mailinfra_gpt_spam_rate", {"domain": "news.example.com"}) == 0.0041


@pytest.mark.parametrize(("text", "message"), [
    ("[]", "received a non-object"),
    ('{"domainStats": [{"name": "news.example.com", "metric": "spam_rate", "value": {"doubleValue": 1}}]}',
     r"domainStats\[0\].name: received 'news.example.com'"),
    ('{"domainStats": [{"name": "domains/a.com/domainStats/1", "metric": "spam_rate", "value": {}}]}',
     "value: received {}, expected one StatisticValue field"),
    ('{"domainStats": [{"name": "domains/a.com/domainStats/1", "metric": "x", "value": {"intValue": "x"}}]}',
     "expected intValue, doubleValue"),
    ('{"domainStats": [{"name": "domains/a.com/domainStats/1", "metric": "x", "value": {"doubleValue": 1},'
     ' "date": {"year": 2026}}]}', "date: received"),
])
def test_postmaster_refuses_other_shapes(text: str, message: str) -> None:
    with pytest.raises(PostmasterFormatError, match=message):
        parse_domain_stats(text)


def test_an_empty_page_is_no_stats() -> None:
    assert parse_domain_stats("{}") == ([], None)
