"""Bounce and complaint processing with automatic suppression (issue 12): the pure core and the stores.

The API other packages build on (kept stable; /work/brief/s12-api.md says the same):

verp.py — signed return paths (pure)
    build_return_path(recipient, stream, domain, secret, *, day) -> str
        "b-<mac16><day3><stream4>-<local>=<domain>@<domain>" or, for a recipient that does not fit in the
        64-octet local part, "h-<mac16><day3><stream4>@<domain>". secret: bytes or [current, retiring...].
    verify_return_path(address, secret, streams, *, today, max_age=60 days, candidates=()) -> VerpToken | None
    build_header(recipient, stream, secret, *, day) -> str        the X-Mailinfra-Id header value (HEADER)
    verify_header(value, secret, streams, *, today, max_age) -> VerpToken | None
    LOCAL_PART_PATTERN: the regexp (both forms) a bounce host's recipient check accepts.
    VerpToken(recipient, stream, day)

address.py — normalise_address(text) -> str (raises BadAddress); try_normalise(text) -> str | None

model.py — Report, Entry, Decision, Policy, ReportKind, Source, BounceClass, FeedbackType, Action, ALL_KINDS

reports.py — parsing (pure, stdlib email; flufl.bounce for non-RFC bounces)
    Context(secrets, streams: {stream key: StreamKind}, pools: {stream key: pool | None},
            fbl_addresses, max_age)                         context_from_config(config, secrets) builds it
    parse_message(raw: bytes, *, envelope_recipient, context, today) -> list[Report]
        a DSN to a return path, or an ARF report to an FBL address; [] for anything else
    parse_ses_event(body: str | dict, *, context, today) -> list[Report]    an SQS body (SNS envelope or raw)
    message_key(raw) -> str                                  the report's Message-ID (or a digest)

classify.py — classify(status, diagnostic, remote_mta="") -> Classification(cls, soft, rule)
    rules as data in rules/*.toml (RFC 3463 codes first, then provider text patterns)

policy.py — policy_from_config(config.bounces.suppression) -> Policy
    decide(report, policy, *, soft_count_before, now, actor) -> Decision  (pure)

pipeline.py — the processor's one call per report (I/O only through the store given)
    process_message(raw, *, envelope_recipient, context, policy, store, now, actor) -> list[Applied]
    process_reports(reports, *, policy, store, now, actor) -> list[Applied]

store.py — SuppressionStore protocol (get, check, put, remove, entries, soft_count, apply, changes_since,
    pool_counts, audit_log, close); Applied, Change, AuditEvent
sqlite_store.py — SqliteStore(path)                      the embedded default (WAL)
dynamodb_store.py — DynamoStore(table_name, *, client=None, region=None)
    table: partition key "pk" (S), TTL attribute "expires_at" (epoch seconds), on-demand
lookup.py — LookupTable(path): the enforcement hosts' local replica (an indexed SQLite file)
    sync(store) -> int; lookup(address, kind, now) -> Hit | None; Hit.reply() -> the 550 reply text
paths.py — HOST_DB_PATH, HOST_REPLICA_PATH, lab_db_path(runtime_dir)
"""
