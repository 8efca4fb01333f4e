"""Throughput and peak memory of `npbigram prepare` against corpus size (memory must stay
flat), and training from the prepared folder beside training from the text in memory.

    python benchmarks/prepare_bench.py [--sizes 100MB,1GB,2GB] [--dask] [--tokenizer char]
                                       [--tmp DIR] [--json FILE]

benchmarks/README.md ("Corpora larger than memory") says how each number is taken.
"""

import argparse
import filecmp
import json
import os
import re
import resource
import shutil
import sys
import tempfile
from pathlib import Path

from children import child_env, default_data, run_child

from npbigram import DatasetError
from npbigram.utils.files import atomic_write_bytes

REPEATS = {"100MB": 90, "1GB": 900, "2GB": 1800}  # copies of tinyshakespeare (1,115,394 B)
SHARDS = 8
CHILD_TIMEOUT_S = 1800

# the child: prepare once, then report seconds and peak memory as one JSON line
CHILD = """
import json, sys, time
from npbigram.data.prepare import prepare

def peak_mb():
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM")) / 1024

args = json.loads(sys.argv[1])
cluster = client = None
if args["dask"]:
    from distributed import Client, LocalCluster
    started = time.perf_counter()
    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                           dashboard_address=None)
    client = Client(cluster, set_as_default=False)
    client.run(lambda: __import__("npbigram.data.prepare"))  # workers import and load the JIT cache
    cluster_s = time.perf_counter() - started
start = time.perf_counter()
meta = prepare(args["data"], args["out"], args["tokenizer"], scheduler=client, force=True)
result = {"seconds": time.perf_counter() - start, "peak_mb": peak_mb(), "tokens": meta["tokens"]}
if client is not None:
    result["cluster_s"] = cluster_s
    result["worker_peak_mb"] = sorted(client.run(peak_mb).values())
    client.close()
    cluster.close()
print(json.dumps(result))
"""

FLOOR_LINE = re.compile(r"([\d.]+) above the floor")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100MB,1GB,2GB",
                        help=f"comma-separated, from {', '.join(REPEATS)}")
    parser.add_argument("--dask", action="store_true",
                        help="also prepare the largest corpus as 8 shards on a Dask cluster")
    parser.add_argument("--tokenizer", choices=("char", "byte"), default="char")
    parser.add_argument("--data", type=Path, default=None,
                        help="the text repeated into corpora (default: $NPBIGRAM_DATA, else "
                             "tinyshakespeare, shipped in the package)")
    parser.add_argument("--tmp", default=None, help="where corpora go (default: $TMPDIR)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--in-memory-max", default="100MB", choices=REPEATS,
                        help="largest size also trained from the text file in memory "
                             "(about 11 bytes of memory per character)")
    args = parser.parse_args(argv)
    sizes = args.sizes.split(",")
    if unknown := [s for s in sizes if s not in REPEATS]:
        parser.error(f"unknown sizes {unknown}: choose from {', '.join(REPEATS)}")
    try:
        text = (args.data or default_data()).read_bytes()
    except (DatasetError, OSError) as e:
        parser.error(f"--data: {e}")
    results = []
    with tempfile.TemporaryDirectory(prefix="npbigram-prepare-bench-", dir=args.tmp) as tmp:
        tmp = Path(tmp)
        for size in sizes:
            _warm_up(tmp, args.tokenizer)
            corpus = tmp / f"{size}.txt"
            _write_repeated(corpus, text, REPEATS[size])
            results.append(_measure(f"local {size}", corpus, tmp / f"out-{size}", args.tokenizer))
            results.extend(_measure_training(size, tmp / f"out-{size}", tmp))
            if REPEATS[size] <= REPEATS[args.in_memory_max]:
                results.extend(_measure_training(size, corpus, tmp, in_memory=True))
            if args.dask and size == sizes[-1]:
                shards = _cut_into_shards(corpus, tmp / "shards")
                corpus.unlink()
                results.append(_measure(f"dask {size} in {SHARDS} shards",
                                        str(shards / "*.txt"), tmp / "out-dask", args.tokenizer,
                                        dask=True))
                results[-1]["identical_to_local"] = _same_outputs(tmp / f"out-{size}",
                                                                  tmp / "out-dask")
                print(f"    identical to the local run: {results[-1]['identical_to_local']}")
            _remove_contents(tmp)
    if args.json:
        atomic_write_bytes(Path(args.json), (json.dumps(results, indent=2) + "\n").encode())
    return 0


def _warm_up(tmp, tokenizer):
    """Tiny runs of prepare and of training from the folder and from the text, so that the
    measured children load compiled kernels from the cache."""
    (tmp / "warm.txt").write_text("warm up the JIT cache\n" * 1000)
    _run_child({"data": str(tmp / "warm.txt"), "out": str(tmp / "out-warm"),
                "tokenizer": tokenizer, "dask": False})
    for data in (tmp / "out-warm", tmp / "warm.txt"):
        for flags in (["--full-batch", "--max-iters", "2"], ["--max-iters", "2"]):
            _train(["--data", str(data), "--out", str(tmp / "warm.npz"), "--force",
                    "--sample-tokens", "0", *flags])


def _write_repeated(path, text, repeats):
    """The corpus, synced to disk: its writeback must not compete with the measured run."""
    with open(path, "wb") as f:
        for _ in range(repeats):
            f.write(text)
        f.flush()
        os.fsync(f.fileno())


def _cut_into_shards(corpus, folder):
    """SHARDS files of equal size (tinyshakespeare is ASCII: any cut is a character boundary)."""
    folder.mkdir()
    size = corpus.stat().st_size
    with open(corpus, "rb") as f:
        for k in range(SHARDS):
            with open(folder / f"shard{k}.txt", "wb") as shard:
                shard.write(f.read((k + 1) * size // SHARDS - k * size // SHARDS))
                shard.flush()
                os.fsync(shard.fileno())
    return folder


def _measure(label, data, out, tokenizer, dask=False):
    load = os.getloadavg()[0]
    mb = sum(p.stat().st_size for p in Path(data).parent.glob(Path(data).name)) / 1e6
    cpu_before = _children_cpu_s()
    child = _run_child({"data": str(data), "out": str(out), "tokenizer": tokenizer, "dask": dask})
    result = child.result()
    result.update(label=label, mb=mb, wall_s=child.wall_s, load_before=load,
                  cpu_s=_children_cpu_s() - cpu_before, mb_per_s=mb / result["seconds"])
    extra = ""
    if dask:
        extra = (f", cluster start {result['cluster_s']:.1f} s, worker peaks "
                 f"{', '.join(f'{m:.0f}' for m in result['worker_peak_mb'])} MB")
    print(f"{label:>24}: {mb:8.1f} MB in {result['seconds']:6.2f} s = "
          f"{result['mb_per_s']:6.0f} MB/s, peak {result['peak_mb']:6.0f} MB "
          f"(child wall {result['wall_s']:.2f} s, CPU {result['cpu_s']:.2f} s, "
          f"load average {load:.2f}{extra})", flush=True)
    return result


def _measure_training(size, data, tmp, in_memory=False):
    """Whole `npbigram train` processes on `data`: full batch, and (prepared) 300 minibatch
    steps."""
    source = "text in memory" if in_memory else "prepared"
    jobs = [("full-batch", ["--full-batch"])]
    if not in_memory:
        jobs.append(("minibatch 300 steps", ["--max-iters", "300", "--eval-iters", "20"]))
    results = []
    for name, flags in jobs:
        load = os.getloadavg()[0]
        done = _train(["--data", str(data), "--out", str(tmp / "bench-ckpt.npz"), "--force",
                       *flags])
        floor, wall = FLOOR_LINE.search(done.stdout), done.wall_s
        result = {"label": f"train {name} {size} ({source})", "wall_s": wall,
                  "peak_mb": done.max_rss_bytes / 2**20, "load_before": load,
                  "above_floor": float(floor.group(1)) if floor else None}
        results.append(result)
        print(f"{result['label']:>44}: whole process {wall:6.2f} s, peak "
              f"{result['peak_mb']:6.0f} MB, {result['above_floor']} nats above the floor "
              f"(load average {load:.2f})", flush=True)
    return results


def _children_cpu_s():
    """User + system CPU seconds of the finished children (and their own children)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run_child(args):
    """The prepare child (CHILD) on args, finished."""
    return _succeeded([sys.executable, "-c", CHILD, json.dumps(args)], "prepare")


def _train(argv):
    """A whole `npbigram train` process on argv, finished: its wall time and peak RSS."""
    return _succeeded([sys.executable, "-m", "npbigram", "train", *argv],
                      " ".join(["npbigram train", *argv]))


def _succeeded(cmd, what):
    child = run_child(cmd, child_env(), timeout_s=CHILD_TIMEOUT_S)
    if failure := child.failure():
        raise RuntimeError(f"{what} failed ({failure}):\n{child.stderr}")
    return child


def _same_outputs(a, b):
    """Token files and counts byte for byte, and the same token counts and tokenizer."""
    meta_a, meta_b = (json.loads((d / "meta.json").read_text()) for d in (a, b))
    names = [*meta_a["files"].values(), *(meta_a["counts"] or {}).values()]
    return all(filecmp.cmp(a / n, b / n, shallow=False) for n in names) and all(
        meta_a[k] == meta_b[k] for k in ("tokenizer", "dtype", "tokens", "vocab_size"))


def _remove_contents(folder):
    """Delete the corpora and outputs as soon as they are measured: gigabytes each."""
    for path in folder.iterdir():
        if path.is_dir():
            shutil.rmtree(path)
        else:
            path.unlink()


if __name__ == "__main__":
    sys.exit(main())
