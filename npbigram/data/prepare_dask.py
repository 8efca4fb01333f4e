"""prepare's two passes as tasks on a Dask distributed cluster (the optional `dask` extra).

Pass 1 scans every byte range at once (and hashes each file cut into several); pass 2 encodes
the ranges with at most a few results in flight ahead of the one the client writes, and
SplitCounter adds the pairs that join consecutive ranges: the output is the local run's, byte
for byte. The workers read the sources by their absolute paths: they must see the same files.
"""

from collections import deque

try:
    import distributed
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError(
        "preparing on a Dask cluster needs dask[distributed], the `dask` extra: "
        "pip install -e '.[dask]' in the npbigram checkout (or pip install 'dask[distributed]')"
    ) from e

from .prepare_tasks import encode_range_task, file_sha256, scan_range, split_ranges

RESULTS_AHEAD_PER_THREAD = 2  # pass 2 keeps this many tasks per worker thread in flight


class DaskRunner:
    """The passes as Dask tasks; the interface of prepare's _LocalRunner."""

    def __init__(self, scheduler, chunk_bytes, range_bytes):
        if isinstance(range_bytes, bool) or not isinstance(range_bytes, int) or range_bytes < 4:
            raise ValueError(f"range_bytes must be an int >= 4, got {range_bytes!r}")
        self.chunk_bytes = chunk_bytes
        self.range_bytes = range_bytes
        if isinstance(scheduler, distributed.Client):
            self.client, self._owns_client = scheduler, False
        else:
            self.client = distributed.Client(scheduler, set_as_default=False)
            self._owns_client = True

    def scan(self, files, tokenizer, advance):
        """(ranges, their RangeScans, {path: SHA-256} of files split over several ranges)."""
        ranges, split_files = [], []
        for path, size in files:
            file_ranges = split_ranges(path, size, self.range_bytes)
            ranges += file_ranges
            if len(file_ranges) > 1:
                split_files.append(path)
        scans = [self.client.submit(scan_range, r, tokenizer, self.chunk_bytes, None,
                                    r.path not in split_files, pure=False) for r in ranges]
        digests = {path: self.client.submit(file_sha256, path, self.chunk_bytes, pure=False)
                   for path in split_files}
        range_bytes = {scan.key: r.end - r.start for scan, r in zip(scans, ranges)}
        for done in distributed.as_completed(scans, loop=self.client.loop):
            if advance is not None:
                advance(range_bytes[done.key])
        return (ranges, [scan.result() for scan in scans],
                {path: digest.result() for path, digest in digests.items()})

    def encode(self, ranges, scans, encoding, advance):
        """The token stream as (tokens, counted) pieces, one per range, in stream order."""
        ahead = RESULTS_AHEAD_PER_THREAD * max(1, sum(self.client.nthreads().values()))
        in_flight = deque()  # (range, future) in stream order
        position = 0  # stream index of the next submitted range's first token
        for byte_range, scan in zip(ranges, scans):
            in_flight.append((byte_range, self.client.submit(
                encode_range_task, byte_range, encoding, scan.n_tokens, position,
                self.chunk_bytes, pure=False)))
            position += scan.n_tokens
            if len(in_flight) >= ahead:
                yield self._collect(*in_flight.popleft(), advance)
        while in_flight:
            yield self._collect(*in_flight.popleft(), advance)

    @staticmethod
    def _collect(byte_range, future, advance):
        tokens, counted = future.result()
        future.release()  # the worker may drop its copy
        if advance is not None:
            advance(byte_range.end - byte_range.start)
        return tokens, counted

    def close(self):
        if self._owns_client:
            self.client.close()
