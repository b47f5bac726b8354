"""`python -m mailinfra.placement send|read --config FILE`: the host services of inbox placement."""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in ("send", "read"):
        print("mailinfra.placement: received "
              f"{argv[0] if argv else 'nothing'!r}, expected a command: send | read", file=sys.stderr)
        return 2
    if argv[0] == "send":
        from mailinfra.placement.sender import main_send

        return main_send(argv[1:])
    from mailinfra.placement.service import main_read

    return main_read(argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
