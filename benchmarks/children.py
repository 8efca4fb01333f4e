"""The benchmarks' child processes: each measurement runs in a fresh one, so its threads and its
memory are its own. run_child waits for it with os.wait4: the exact wall time and its peak RSS."""

import json
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT_S = 900


@dataclass
class Child:
    """A finished child process: exit code, output, wall time, peak RSS, why it was stopped."""

    returncode: int
    stdout: str
    stderr: str
    wall_s: float
    max_rss_bytes: int
    killed: str | None

    def failure(self):
        """None if the child succeeded, else a one-line reason."""
        if self.killed:
            return self.killed
        if self.returncode < 0:
            return f"killed by {signal.Signals(-self.returncode).name}"
        if self.returncode != 0:
            lines = self.stderr.strip().splitlines() or ["(no output)"]
            return f"exit status {self.returncode}: {lines[-1]}"
        return None

    def result(self):
        """The JSON object on the last line of its stdout."""
        return json.loads(self.stdout.strip().splitlines()[-1])


def run_child(cmd, env, mem_cap_bytes=float("inf"), timeout_s=CHILD_TIMEOUT_S):
    """Run cmd to completion, timing its whole life; kill it past the memory cap or timeout.

    The main thread blocks in os.wait4, so the wall time and the child's own peak RSS are
    exact; a watchdog thread samples the child's resident set ten times a second.
    """
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=ROOT)
        done = threading.Event()
        killed = []

        def watchdog():
            while not done.wait(0.1):
                if time.perf_counter() - start > timeout_s:
                    killed.append(f"stopped after {timeout_s:g} s")
                elif proc_kib(f"/proc/{proc.pid}/status", "VmRSS") * 1024 > mem_cap_bytes:
                    killed.append(f"stopped above the memory cap of {gb(mem_cap_bytes)}")
                else:
                    continue
                proc.kill()
                return

        watcher = threading.Thread(target=watchdog, daemon=True)
        watcher.start()
        _, status, usage = os.wait4(proc.pid, 0)
        wall_s = time.perf_counter() - start
        done.set()
        watcher.join()
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        return Child(proc.returncode, out.read().decode(errors="replace"),
                     err.read().decode(errors="replace"), wall_s, usage.ru_maxrss * 1024,
                     killed[0] if killed else None)


def proc_kib(path, field):
    """The kB of `field` in a /proc file of "Field: n kB" lines (/proc/meminfo, /proc/PID/status),
    0 if the file or the field is gone (a process that exited)."""
    try:
        with open(path) as f:
            return next(int(line.split()[1]) for line in f if line.startswith(field + ":"))
    except (OSError, StopIteration):
        return 0


def child_env(threads=None, tree=None, **extra):
    """The environment of a child: this checkout importable, or first the npbigram of `tree`
    (another checkout, suite.py --baseline); with threads, that many threads everywhere
    (PJRT_NPROC: the size of XLA's CPU thread pool; NUM_CPU_THREADS: tinygrad's)."""
    counts = {} if threads is None else dict.fromkeys(
        ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "PJRT_NPROC", "NUM_CPU_THREADS"), str(threads))
    env = dict(os.environ, **counts, **extra)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [tree and str(tree), str(ROOT),
                                                      env.get("PYTHONPATH")]))
    return env


def default_data():
    """The text to train on: $NPBIGRAM_DATA, else the package's tinyshakespeare."""
    from npbigram.data import tinyshakespeare_path  # not in measure_step's process

    env_data = os.environ.get("NPBIGRAM_DATA")
    return Path(env_data) if env_data else tinyshakespeare_path()


def gb(n_bytes):
    return f"{n_bytes / 1e9:.1f} GB"
