"""A real IMAP store for the lab's seed mailboxes: Dovecot (Debian dovecot-imapd, dovecot-lmtpd, dovecot-sieve).

One Dovecot per lab, own config and directories (nothing of the system's /etc/dovecot is used), listening on
one address for IMAP (plain text inside the lab's namespace or on loopback: no TLS to a server we started
ourselves) and on a Unix socket for LMTP (RFC 2033), through which the simulated providers file each
accepted message. Filing is done by Sieve (RFC 5228 `fileinto`, RFC 6154 `\\Junk` special-use on the Junk
mailbox): the provider adds its verdict header, the global Sieve script files the message into INBOX or Junk
— the way a provider's filter decides the folder before the user sees it.

Started and stopped by PID (`start_store` / `ImapStore.stop`); everything it writes is under its root.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import smtplib
import socket
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

# The header the lab providers set, which the global Sieve script files by (and which a test can read).
FOLDER_HEADER = "X-Lab-Folder"
JUNK = "Junk"
# Dovecot refuses mail processes as root (first_valid_uid); Debian's `mail` user owns the lab's mailboxes.
MAIL_USER = "mail"
SIEVE_SCRIPT = f"""require ["fileinto"];
# The lab provider's verdict (mailinfra.lab.placement): Junk or INBOX.
if header :is "{FOLDER_HEADER}" "{JUNK}" {{
  fileinto "{JUNK}";
  stop;
}}
"""


@dataclass
class ImapStore:
    root: Path
    address: str
    port: int
    process: subprocess.Popen[bytes]
    users: dict[str, str]  # address -> password

    @property
    def pid(self) -> int:
        return self.process.pid

    @property
    def lmtp_socket(self) -> Path:
        return self.root / "run" / "lmtp"

    def deliver(self, recipient: str, raw: bytes, folder: str) -> None:
        deliver_lmtp(self.lmtp_socket, recipient, raw, folder)

    def stop(self) -> None:
        """SIGTERM to the master (it stops its children), SIGKILL after 10 s; reaped either way."""
        if self.process.poll() is not None:
            return
        os.kill(self.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


def deliver_lmtp(socket_path: Path, recipient: str, raw: bytes, folder: str) -> None:
    """File one message for `recipient` into INBOX or Junk (through LMTP and the Sieve script)."""
    stamped = f"{FOLDER_HEADER}: {folder}\r\n".encode() + raw
    with smtplib.LMTP(str(socket_path)) as lmtp:
        lmtp.sendmail("", [recipient], stamped)


def dovecot_available() -> bool:
    return all(shutil.which(tool) for tool in ("dovecot", "sievec")) and Path("/usr/lib/dovecot/lmtp").exists()


def render_config(root: Path, address: str, port: int) -> str:
    mail = pwd.getpwnam(MAIL_USER)
    return f"""# Rendered by mailinfra.lab.imapstore: a lab-only Dovecot (no TLS, plain-text logins on {address}).
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap lmtp
listen = {address}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
default_internal_user = dovecot
default_login_user = dovenull
first_valid_uid = {mail.pw_uid}
mail_location = maildir:{root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={root}/mail/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
  mailbox {JUNK} {{
    special_use = \\Junk
    auto = subscribe
  }}
}}
service imap-login {{
  inet_listener imap {{
    address = {address}
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service lmtp {{
  unix_listener lmtp {{
    mode = 0666
  }}
}}
protocol lmtp {{
  mail_plugins = $mail_plugins sieve
  postmaster_address = postmaster@lab.invalid
}}
plugin {{
  sieve_before = {root}/filing.sieve
}}
"""


def prepare_store(root: Path, address: str, port: int, users: dict[str, str]) -> list[str]:
    """Write the config, users and compiled Sieve script under `root`; returns Dovecot's argv (foreground)."""
    mail = pwd.getpwnam(MAIL_USER)
    _check_reachable(root)
    for sub in ("run", "state", "mail"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    os.chown(root / "mail", mail.pw_uid, mail.pw_gid)
    (root / "users").write_text("".join(f"{user}:{{PLAIN}}{password}::::::\n" for user, password in users.items()))
    (root / "filing.sieve").write_text(SIEVE_SCRIPT)
    subprocess.run(["sievec", str(root / "filing.sieve")], check=True, capture_output=True)
    config = root / "dovecot.conf"
    config.write_text(render_config(root, address, port))
    return ["dovecot", "-F", "-c", str(config)]


def wait_for_store(root: Path, alive: Callable[[], bool], *, address: str | None = None, port: int = 0,
                   timeout: float = 15.0) -> None:
    """Until the LMTP socket exists (and, when `address` is given, IMAP accepts); RuntimeError with the log's
    last lines when Dovecot exits or does not come up in time."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and alive():
        if (root / "run" / "lmtp").exists() and (address is None or _accepts(address, port)):
            return
        time.sleep(0.05)
    log = (root / "dovecot.log").read_text(errors="replace") if (root / "dovecot.log").exists() else ""
    raise RuntimeError(f"dovecot under {root} did not start: {log.strip()[-600:]}")


def start_store(root: Path, address: str, port: int, users: dict[str, str], *, timeout: float = 15.0) -> ImapStore:
    """Prepare and start Dovecot on `address:port` (this network namespace), wait until it serves."""
    argv = prepare_store(root, address, port, users)
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=(root / "stderr.log").open("wb"),
                               start_new_session=True)
    store = ImapStore(root, address, port, process, dict(users))
    try:
        wait_for_store(root, lambda: process.poll() is None, address=address, port=port, timeout=timeout)
    except RuntimeError:
        store.stop()
        raise
    return store


def _check_reachable(root: Path) -> None:
    """Dovecot's auth and mail processes run as unprivileged users: every directory above `root` must let them
    through (a pytest tmp_path under a 0700 directory does not)."""
    for parent in (root, *root.parents):
        if parent.exists() and not parent.stat().st_mode & 0o001:
            raise RuntimeError(f"dovecot root {root}: {parent} is not searchable by other users "
                               "(mode o+x needed: Dovecot's auth and mail users must reach the root)")


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=0.5):
            return True
    except OSError:
        return False
