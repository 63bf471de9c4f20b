"""Start a real argilla-server on loopback with SQLite, fakeredis and the in-memory search engine (test support).

Run with argilla-server's own interpreter (its pins clash with curate's), e.g.::

    $VENV/bin/python tests/support/argilla/argilla_launcher.py --port 6900 --home /tmp/argilla --api-key KEY --password PW

Elasticsearch/OpenSearch and Redis cannot be installed here: Redis is replaced by an in-process ``fakeredis``
server (argilla-server only pings it and enqueues background jobs nobody needs here), and the search engine by
``memory_engine.MemorySearchEngine``. fakeredis is reached in-process, not through its ``TcpFakeServer``: that
server's handler closed the connection under a full test run about one time in two (argilla's MULTI/EXEC job
enqueue then failed with "Connection closed by server"). Everything else (API, database, UI, auth) is the real server.
The process exits by itself when its parent dies, so a crashed test run never leaves a server behind.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from pathlib import Path


def _exit_with_parent(parent_pid: int) -> None:
    while True:
        try:
            os.kill(parent_pid, 0)
        except OSError:
            os._exit(0)
        if os.getppid() != parent_pid:
            os._exit(0)
        time.sleep(1.0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--home", type=Path, required=True, help="argilla home: SQLite database and temp files")
    parser.add_argument("--username", default="argilla")
    parser.add_argument("--api-key", default=os.environ.get("CURATE_ARGILLA_OWNER_API_KEY"))
    parser.add_argument("--password", default=os.environ.get("CURATE_ARGILLA_OWNER_PASSWORD"))
    parser.add_argument("--parent-pid", type=int, default=os.getppid())
    args = parser.parse_args()
    if not args.api_key or not args.password:
        parser.error("--api-key and --password (or CURATE_ARGILLA_OWNER_API_KEY / _PASSWORD) are required")

    home = args.home.resolve()
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    # argilla_server copies its static UI files to a fresh temp dir on every import: keep them in the home.
    os.environ["TMPDIR"] = str(home / "tmp")
    import fakeredis
    import redis

    # argilla_server builds its one connection with `redis.from_url(settings.redis_url)` when its job queues are
    # imported: hand it a client of one in-process fake server instead (the narrowest boundary there is).
    fake_server = fakeredis.FakeServer()
    redis.from_url = lambda url, **kwargs: fakeredis.FakeRedis.from_url(url, server=fake_server, **kwargs)

    os.environ.update(
        {
            "ARGILLA_HOME_PATH": str(home),
            "ARGILLA_DATABASE_URL": f"sqlite+aiosqlite:///{home / 'argilla.db'}?check_same_thread=False",
            "ARGILLA_REDIS_URL": "redis://fakeredis.invalid:6379/0",  # never dialled: see redis.from_url above
            "ARGILLA_SEARCH_ENGINE": "memory",
            "ARGILLA_ENABLE_TELEMETRY": "0",
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_OFFLINE": "1",
        }
    )
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import alembic.config
    import memory_engine  # noqa: F401  (registers the "memory" engine)
    from argilla_server.cli.database.users.create_default import _create_default
    from argilla_server.database import ALEMBIC_CONFIG_FILE

    alembic.config.main(argv=["-q", "-c", ALEMBIC_CONFIG_FILE, "upgrade", "head"])
    asyncio.run(_create_default(args.api_key, args.password, quiet=True))

    threading.Thread(target=_exit_with_parent, args=(args.parent_pid,), name="parent-watch", daemon=True).start()
    import uvicorn

    uvicorn.run("argilla_server._app:app", host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
