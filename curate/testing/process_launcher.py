"""Run a command (a server) in this process's group and take the whole group down when the parent dies.

Run by `curate.testing.server_process.ServerProcess` with the server's own Python (standard library only):
`python process_launcher.py --parent-pid PID -- COMMAND...`. vLLM's API server starts its engine core as a child
process; a test run killed with SIGKILL would leave both behind without this.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    child = subprocess.Popen(command)

    def stop(*_: object) -> None:
        child.terminate()  # the API server shuts its engine down when it can, then the group goes
        try:
            child.wait(timeout=15)
        finally:
            os.killpg(os.getpgrp(), signal.SIGKILL)

    signal.signal(signal.SIGTERM, stop)
    while child.poll() is None:
        try:
            os.kill(args.parent_pid, 0)
        except OSError:
            stop()
        time.sleep(1.0)
    return child.returncode


if __name__ == "__main__":
    sys.exit(main())
