"""Operating-system side of the local cluster: ports, disk space, and the JVM processes.

JVMs are started detached (own session, output to a file), so they outlive the Python process
that started them; everything else here works from a pid alone, checked against the process'
command line so a recycled pid is never signalled.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

from ..errors import ClusterError, PortInUseError

MIN_FREE_DISK = 1024**3

#: Popen objects of the JVMs this Python process started, kept so their exit status is reaped
_children: dict[int, subprocess.Popen] = {}


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether ``host:port`` can be bound the way Kafka binds it (``SO_REUSEADDR``, so TIME_WAIT is fine)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            raise
    return True


def check_ports_free(ports: list[int]) -> None:
    """Raise :class:`PortInUseError` naming the first taken port."""
    for port in ports:
        if not port_free(port):
            raise PortInUseError(
                f"port {port} on 127.0.0.1 is already in use, and the local Kafka cluster needs it "
                f"(ports {min(ports)}..{max(ports)}); stop the program using it (`ss -ltnp | grep {port}`) "
                "or choose other ports with --port (e.g. --port 19092)"
            )


def wait_ports_free(ports: list[int], timeout: float) -> None:
    """Wait up to ``timeout`` s until every port can be bound, then raise as :func:`check_ports_free`.

    For a node restarted right after a SIGKILL: the JVM's main thread shows as a zombie (so the
    process counts as gone) while its other threads are still exiting and holding its sockets.
    """
    deadline = time.monotonic() + timeout
    while not all(port_free(port) for port in ports) and time.monotonic() < deadline:
        time.sleep(0.1)
    check_ports_free(ports)


def check_disk(directory: Path, minimum: int = MIN_FREE_DISK) -> None:
    """Refuse to start a cluster whose data would fill the disk."""
    existing = directory
    while not existing.exists():
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < minimum:
        raise ClusterError(
            f"only {free / 1024**2:.0f} MB free under {existing}; the local Kafka cluster "
            f"needs at least {minimum / 1024**3:.0f} GB there: free some space or choose "
            "another --dir"
        )


def java_command(java: str, libs: Path, options: list[str], main: str, args: list[str]) -> list[str]:
    # the JVM expands the classpath wildcard itself
    return [java, *options, "-cp", f"{libs}/*", main, *args]


def spawn(cmd: list[str], output: Path) -> int:
    """Start ``cmd`` detached (own session, stdout+stderr appended to ``output``); return its pid."""
    with open(output, "ab") as out:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, close_fds=True
        )
    _children[proc.pid] = proc
    return proc.pid


def run_parallel(commands: list[list[str]], timeout: float = 120) -> list[tuple[int, str]]:
    """Run commands at once (each one JVM start); return ``(exit status, output)`` of each, in order."""
    procs = [
        subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for cmd in commands
    ]
    results = []
    for proc in procs:
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        results.append((proc.returncode, out))
    return results


def _reap(pid: int) -> None:
    proc = _children.get(pid)
    if proc is not None:
        if proc.poll() is not None:
            del _children[pid]
        return
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def is_running(pid: int | None, marker: str) -> bool:
    """Whether ``pid`` is alive (not a zombie) and its command line contains ``marker``."""
    if not pid:
        return False
    _reap(pid)
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except FileNotFoundError:
        return False
    except OSError:  # no /proc (not Linux): trust the pid
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    if not cmdline:
        # empty: a zombie, or a child between fork and exec (right after spawn), which is starting,
        # or a killed JVM whose main thread is a zombie while other threads still exit (holding
        # its ports and files): gone only when no thread is left but zombies
        return any(_state_of(pid, task) not in ("Z", "X", "") for task in _threads(pid))
    return marker in cmdline


def _threads(pid: int) -> list[int]:
    try:
        return [int(task) for task in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return [pid]


def _state_of(pid: int, task: int) -> str:
    """The state letter (R, S, Z...) of thread ``task`` of process ``pid``; '' when it is gone."""
    try:
        return Path(f"/proc/{pid}/task/{task}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return ""


def send_signal(pid: int, sig: signal.Signals) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def stop_processes(pids: dict[int, int], markers: dict[int, str], *, kill: bool = False, grace: float = 30.0) -> None:
    """Stop processes: SIGTERM (a paused one is continued first), wait up to ``grace`` s, then SIGKILL.

    ``kill`` sends SIGKILL at once. Returns when every process is gone.
    """
    alive = {node: pid for node, pid in pids.items() if is_running(pid, markers[node])}
    for pid in alive.values():
        if kill:
            send_signal(pid, signal.SIGKILL)
        else:
            send_signal(pid, signal.SIGTERM)
            send_signal(pid, signal.SIGCONT)  # a SIGSTOPped JVM cannot act on SIGTERM
    deadline = time.monotonic() + grace
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = {n: p for n, p in alive.items() if is_running(p, markers[n])}
    for pid in alive.values():
        send_signal(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = {n: p for n, p in alive.items() if is_running(p, markers[n])}
    if alive:
        raise ClusterError(f"processes {sorted(alive.values())} survived SIGKILL")


def tail(path: Path, lines: int = 20) -> str:
    """The last ``lines`` lines of a text file ('' if it does not exist)."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 64 * 1024))
            text = fh.read().decode(errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])
