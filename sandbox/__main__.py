"""python -m sandbox: start the stand-in gateway on a loopback port."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

from .server import MODES, Sandbox, make_server


def load_seed(sandbox: Sandbox, path: Path) -> int:
    """Add the users' tokens and tasks from a seed file; tasks are placed relative to now."""
    seed = json.loads(path.read_text(encoding="utf-8"))
    for user, tokens in seed.get("users", {}).items():
        for token in tokens:
            sandbox.add_user(token, user)
    for task in seed.get("tasks", []):
        task = dict(task)
        sandbox.add_task(task.pop("owner"), **task)
    return len(seed.get("tasks", []))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m sandbox", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument(
        "--step-seconds", type=float, default=4.0, help="time between task states (default 4)"
    )
    parser.add_argument("--seed", type=Path, help="JSON file with users, tokens and tasks")
    parser.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TOKEN=USER[@MODE]",
        help="accept TOKEN as gateway user USER, optionally behaving as MODE (repeatable)",
    )
    parser.add_argument(
        "--mode",
        default="new-api",
        choices=MODES,
        help="how the gateway behaves: new-api (default), novicezk, trueai, or spa (one-api)",
    )
    parser.add_argument("--image-dir", type=Path, help="where drawn images are kept")
    parser.add_argument(
        "--server-address", default="", help="base of imageUrl values (new-api's ServerAddress)"
    )
    parser.add_argument(
        "--cdn-address",
        default="",
        help="base of the URLs of files on Midjourney's CDN: novicezk and trueai imageUrl, "
        "imageUrls, videos (default http://localhost:PORT, this server under another name)",
    )
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    image_dir = args.image_dir or Path(tempfile.gettempdir()) / "mjdash-sandbox-images"
    sandbox = Sandbox(
        tokens={},
        step_seconds=args.step_seconds,
        image_dir=image_dir,
        server_address=args.server_address,
        cdn_address=args.cdn_address,
        mode=args.mode,
    )
    for pair in args.token:
        token, _, user = pair.partition("=")
        user, _, mode = (user or "default").partition("@")
        sandbox.add_user(token, user, mode or None)
    seeded = load_seed(sandbox, args.seed) if args.seed else 0
    server = make_server(sandbox, args.host, args.port)
    server.verbose = args.verbose
    print(
        f"sandbox listening on http://{args.host}:{server.server_address[1]} "
        f"({seeded} seeded tasks, step {args.step_seconds}s, CDN at {sandbox.cdn_address})",
        flush=True,
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        sys.stdout.flush()


if __name__ == "__main__":
    main()
