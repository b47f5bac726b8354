"""rspamd as the DKIM signer of one Postfix host: one milter that writes the RSA and the Ed25519
signature of a message in one pass, with keys parsed once at start (OpenDKIM 2.11 runs one process per
algorithm and re-reads and re-parses its key for every message: docs/BENCHMARKS.md, Lab).

Same signing entries (mailinfra/mta/opendkim.py plan_signing) and the same header policy
(mailinfra/mta/signing.py) as the OpenDKIM signers. Key files: RSA keys are read as the PEM OpenDKIM
reads; rspamd 3.4 loads an Ed25519 key only as base64 of libsodium's 64-byte secret key (seed || public
key), not as PKCS#8 PEM ("cannot extract rsa key from evp key"), so each Ed25519 selector has its own
file in that form (`rspamd_key_file`). rspamd's dkim_signing always signs c=relaxed/relaxed, which is
signing.CANONICALIZATION.
"""

from __future__ import annotations

from collections.abc import Mapping

from mailinfra.mta.files import render_template
from mailinfra.mta.opendkim import ED25519, SigningEntry, plan_signing
from mailinfra.mta.signing import OVERSIGNED_HEADERS, SIGNED_HEADERS
from mailinfra.plan.model import HostPlan, Plan

RUN_DIR = "/run/rspamd"
SOCKET_PATH = f"{RUN_DIR}/milter.sock"
CONF_FILE = "/etc/rspamd/mailinfra-signer.conf"
LOG_FILE = "/var/log/rspamd/rspamd.log"


def rspamd_sign_headers() -> str:
    """sign_headers in rspamd's notation: `(o)name` oversigns (listed once more than present, even when
    absent); plain names are signed when present."""
    names = [f"(o){h.lower()}" for h in OVERSIGNED_HEADERS]
    names += [h.lower() for h in SIGNED_HEADERS if h not in OVERSIGNED_HEADERS]
    return ":".join(names)


def rspamd_key_file(entry: SigningEntry, key_dir: str) -> str:
    """Where rspamd reads the key of an entry: the OpenDKIM PEM for RSA, a base64 file for Ed25519."""
    stem = entry.key_file.rpartition("/")[2].rpartition(".")[0]
    org = entry.key_file.rstrip("/").split("/")[-2]
    suffix = "ed25519.b64" if entry.algorithm == ED25519 else "private"
    return f"{key_dir}/{org}/{stem}.{suffix}"


def render_rspamd(plan: Plan, host: HostPlan, *, key_dir: str, socket_path: str = SOCKET_PATH,
                  run_dir: str = RUN_DIR, log_file: str = LOG_FILE) -> str:
    """The host's rspamd.conf: a signing-only rspamd milter for every stream the host sends for."""
    entries = plan_signing(plan, host)
    domains: dict[str, list[SigningEntry]] = {}
    for entry in entries:
        domains.setdefault(entry.domain, []).append(entry)
    key_files: Mapping[str, str] = {e.name: rspamd_key_file(e, key_dir) for e in entries}
    return render_template(
        "rspamd/rspamd.conf.j2", plan=plan, host=host, run_dir=run_dir, log_file=log_file,
        socket_path=socket_path, sign_headers=rspamd_sign_headers(), key_files=key_files,
        domains=sorted(domains.items()), networks=["127.0.0.0/8", *host.injection_cidrs])
