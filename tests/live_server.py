"""What every test that runs a real ``lossgrad serve`` needs: a free loopback
port and the installed console script."""

from __future__ import annotations

import socket
import sys
from pathlib import Path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def lossgrad_command() -> str:
    """The path of the ``lossgrad`` script next to this Python."""
    script = Path(sys.executable).with_name("lossgrad")
    assert script.exists(), "the package is not installed: run `make test`"
    return str(script)
