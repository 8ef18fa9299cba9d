"""Write or check the committed OpenAPI document.

``python -m service.openapi`` writes ``openapi/openapi.json`` from the app;
``--check`` exits with status 1 if the file differs from what the app serves.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from service.app import create_app
from service.settings import Settings

DEFAULT_PATH = Path(__file__).resolve().parent.parent / "openapi" / "openapi.json"


def current_spec() -> dict[str, Any]:
    """The document the app serves at /openapi.json (settings do not enter it)."""
    return create_app(Settings()).openapi()


def render(spec: dict[str, Any]) -> str:
    """The document as committed: two-space indent, UTF-8, final newline."""
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m service.openapi``."""
    parser = argparse.ArgumentParser(prog="python -m service.openapi")
    parser.add_argument("path", nargs="?", type=Path, default=DEFAULT_PATH)
    parser.add_argument(
        "--check", action="store_true", help="fail if the file is out of date"
    )
    args = parser.parse_args(argv)
    text = render(current_spec())
    if args.check:
        if not args.path.exists() or args.path.read_text(encoding="utf-8") != text:
            print(f"{args.path} is out of date; run `make openapi`", file=sys.stderr)
            return 1
        return 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
