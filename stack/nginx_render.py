"""The front door's nginx.conf on stdout, for an image or a pod (the Dockerfile's webui-door).

    python -m stack.nginx_render --listen 0.0.0.0:8080 --upstream 127.0.0.1:5000 --prefix /tmp

Rendered as stack/nginx.py renders it for `make run`, in its container layout: no `user`
directive (the image runs unprivileged), the error log on stderr, every path under --prefix.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from stack.nginx import DoorSettings, render


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--listen", default="0.0.0.0:8080", help="default: 0.0.0.0:8080")
    parser.add_argument("--upstream", default="127.0.0.1:5000", help="gunicorn's address")
    parser.add_argument("--prefix", type=Path, default=Path("/tmp"), help="writable directory")
    parser.add_argument(
        "--max-predictions", type=int, default=DoorSettings.max_predictions, help="all clients"
    )
    parser.add_argument(
        "--max-large-uploads", type=int, default=DoorSettings.max_large_uploads, help="≥ 1 MB"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    """Print the configuration."""
    args = parse_args(argv)
    settings = DoorSettings(
        max_predictions=args.max_predictions, max_large_uploads=args.max_large_uploads
    )
    sys.stdout.write(render(args.listen, args.upstream, args.prefix, settings, container=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
