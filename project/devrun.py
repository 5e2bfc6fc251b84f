"""`make run`'s three processes: the runs' cluster, the webhooks' cluster and the development server.

    python -m project.devrun            # HOST and PORT from the environment (127.0.0.1:8000)

Ctrl-C stops all three once and cleanly. Why not `cmd & cmd & cmd & wait` with `trap 'kill 0'` in
the Makefile: a non-interactive shell starts background commands with SIGINT ignored (runserver
then never hears Ctrl-C), `kill 0` signals the shell itself again (its TERM trap runs again, and
again), and django-q2's handler, re-entered by every one of those signals while it waits for its
sentinel, recursed until the process crashed (the RecursionError flood, then make's "Segmentation
fault"). Here each child runs in a process group of its own, so the terminal's Ctrl-C reaches only
this process, which sends exactly one SIGINT to each child and waits for them; a second Ctrl-C
kills what is left. When one child ends by itself (the port is taken, say), the others are stopped.
"""

import os
import signal
import subprocess
import sys
import time

GRACE_SECONDS = 20  # a worker finishing its batch; then SIGKILL


def commands(python: str, host: str, port: str) -> list[tuple[str, list[str], dict]]:
    cluster = {
        "INTEGRATIONS_WEBHOOK_CLUSTER": os.environ.get("INTEGRATIONS_WEBHOOK_CLUSTER") or "integrations-webhooks"
    }
    return [
        ("worker", [python, "manage.py", "qcluster"], cluster),
        ("webhooks", [python, "manage.py", "qcluster"], {**cluster, "Q_QUEUE": "webhooks"}),
        ("web", [python, "manage.py", "runserver", f"{host}:{port}", "--noreload"], cluster),
    ]


def main() -> int:
    host, port = os.environ.get("HOST", "127.0.0.1"), os.environ.get("PORT", "8000")
    stopping = {"since": None, "forced": False}

    def on_signal(signum, frame):
        if stopping["since"] is None:
            stopping["since"] = time.monotonic()
        else:  # a second Ctrl-C: no more waiting
            stopping["forced"] = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    children = []
    for name, argv, extra in commands(sys.executable, host, port):
        # process_group=0: the terminal's Ctrl-C goes to this process only, never twice to a child
        children.append((name, subprocess.Popen(argv, env={**os.environ, **extra}, process_group=0)))
    status = 0
    signalled = False
    while any(proc.poll() is None for _, proc in children):
        ended = [(name, proc.returncode) for name, proc in children if proc.returncode is not None]
        if ended and stopping["since"] is None:  # one died by itself: stop the others
            name, code = ended[0]
            print(f"devrun: {name} exited with status {code}; stopping the others", file=sys.stderr, flush=True)
            stopping["since"], status = time.monotonic(), 1
        if stopping["since"] is not None and not signalled:
            signalled = True
            for _, proc in children:
                if proc.poll() is None:
                    proc.send_signal(signal.SIGINT)  # django-q2 and runserver both stop cleanly on it
        if stopping["forced"] or (stopping["since"] and time.monotonic() - stopping["since"] > GRACE_SECONDS):
            for _, proc in children:
                if proc.poll() is None:
                    os.killpg(proc.pid, signal.SIGKILL)  # its workers too
            status = 1
        time.sleep(0.1)
    if stopping["since"] is not None and status == 0:
        print("Stopped.", file=sys.stderr, flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
