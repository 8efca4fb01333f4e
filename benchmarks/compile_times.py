"""The compile time of each numba kernel a job compiles from an empty JIT cache: the CPU seconds
of every Dispatcher compilation (numba's "numba:compile" events), nested as numba compiles them
(a kernel's callees and numba's own overload implementations, such as np.empty's, inside their
caller's time), so that a change which makes a kernel slower to compile shows.

    python benchmarks/compile_times.py                      # npbigram train with bigram.py's defaults
    python benchmarks/compile_times.py --repeats 3 -- --grad pair-counts --batch-size 512

Each repeat is a fresh process with a fresh NUMBA_CACHE_DIR running `npbigram train` in-process
(the arguments after `--` are added to it); the table gives each compilation's median over the
repeats. CPU time (time.process_time) rather than wall time: other work on the cores changes it
less. The first compilation of a process also pays numba's one-time set-up of its target
(hundreds of milliseconds), which a warm run pays on its first cache load as well.
"""

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from children import ROOT, child_env, default_data

SIGNATURE_CHARS = 70  # of each compilation's argument types in the table


def measure(train_args):
    """Run `npbigram train *train_args` here, recording every compilation: (rows, process CPU s)
    with rows [{"depth", "kernel", "signature", "cpu_s"}] in the order compilations started."""
    from numba.core import event  # after the parent set NUMBA_CACHE_DIR

    rows, open_rows = [], []

    class CompileTimer(event.Listener):
        def on_start(self, ev):
            func = ev.data["dispatcher"].py_func
            open_rows.append((len(rows), time.process_time()))
            rows.append({"depth": len(open_rows) - 1,
                         "kernel": f"{func.__module__}.{func.__qualname__}",
                         "signature": ", ".join(map(str, ev.data["args"]))})

        def on_end(self, ev):
            index, started = open_rows.pop()
            rows[index]["cpu_s"] = time.process_time() - started

    event.register("numba:compile", CompileTimer())
    started = time.process_time()
    from npbigram.cli import main
    with tempfile.TemporaryDirectory(prefix="npbigram-compile-") as tmp, \
            contextlib.redirect_stdout(open(os.devnull, "w")):
        status = main(["train", *train_args, "--out", str(Path(tmp) / "ckpt.npz"), "--force"])
    if status:
        raise SystemExit(f"npbigram train {' '.join(train_args)} failed with status {status}")
    return rows, time.process_time() - started


def run_repeat(train_args):
    """One measurement in a fresh process with an empty JIT cache."""
    with tempfile.TemporaryDirectory(prefix="npbigram-numba-cache-") as cache:
        out = subprocess.run([sys.executable, __file__, "--child", "--", *train_args],
                             env=child_env(NUMBA_CACHE_DIR=cache), cwd=ROOT, text=True,
                             capture_output=True)
    if out.returncode:
        raise SystemExit(f"the measuring process failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_table(repeats):
    """The first repeat's compilations, each with its median CPU time over the repeats (a
    compilation is the same one in every repeat when its kernel path and signature match)."""
    def keyed(rows):
        path, keys = [], []
        for row in rows:
            path[row["depth"]:] = [(row["kernel"], row["signature"])]
            keys.append(tuple(path))
        return dict(zip(keys, rows))
    runs = [keyed(r["rows"]) for r in repeats]
    medians = {key: statistics.median(run[key]["cpu_s"] for run in runs if key in run)
               for key in runs[0]}
    return [{**row, "cpu_s": medians[key],
             "self_s": medians[key] - sum(t for k, t in medians.items()
                                          if len(k) == len(key) + 1 and k[:-1] == key),
             "repeats": sum(key in run for run in runs)}
            for key, row in runs[0].items()]


def measure_compilations(train_args, repeats):
    """`repeats` fresh processes of `npbigram train *train_args`: {"repeats", "table" (each
    compilation with its median CPU s, see median_table), "compile_s" (the top-level
    compilations' sum), "process_cpu_s" (the job's median process CPU after start-up)}."""
    runs = [run_repeat(train_args) for _ in range(repeats)]
    table = median_table(runs)
    return {"repeats": repeats, "table": table,
            "compile_s": sum(row["cpu_s"] for row in table if row["depth"] == 0),
            "process_cpu_s": statistics.median(r["process_cpu_s"] for r in runs)}


def print_table(measured):
    repeats = measured["repeats"]
    print(f"compile CPU seconds per kernel, median of {repeats} fresh process"
          f"{'es' * (repeats > 1)} (nested: inside their caller)")
    print(f"{'kernel':<72} {'total':>7} {'self':>7}  signature")
    for row in measured["table"]:
        signature = row["signature"]
        if len(signature) > SIGNATURE_CHARS:
            signature = signature[:SIGNATURE_CHARS - 3] + "..."
        name = "  " * row["depth"] + row["kernel"].removeprefix("npbigram.engine.")
        print(f"{name:<72} {row['cpu_s']:7.3f} {row['self_s']:7.3f}  {signature}")
    print(f"{'all compilation':<72} {measured['compile_s']:7.3f}")
    print(f"{'the whole job (process CPU after start-up)':<72} {measured['process_cpu_s']:7.3f}")


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, default=None,
                   help="text to train on (default: $NPBIGRAM_DATA, else tinyshakespeare as the "
                        "suite finds it)")
    p.add_argument("--repeats", type=int, default=1, help="fresh processes to measure (median)")
    p.add_argument("--json", type=Path, default=None, help="also write the table here as JSON")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("train_args", nargs="*", help="further arguments of npbigram train (after --)")
    args = p.parse_args(argv)
    if args.repeats < 1:
        p.error("--repeats must be at least 1")
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.child:
        rows, process = measure(args.train_args)
        print(json.dumps({"rows": rows, "process_cpu_s": process}))
        return 0
    train_args = ["--data", str(args.data or default_data()), *args.train_args]
    measured = measure_compilations(train_args, args.repeats)
    print_table(measured)
    if args.json:
        args.json.write_text(json.dumps({"train_args": train_args, **measured}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
