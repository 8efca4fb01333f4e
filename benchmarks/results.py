"""Reading run.py's results: rows by implementation and size, the best peer, the hardware
floors, and the formatting of times, rates, ratios and sizes that figures.py and report.py
share."""

from peers import PEERS

TORCH = "torch"
MIB = 2**20


class Lookup:
    """The rows of one run, found by implementation and size."""

    def __init__(self, results):
        self.threads = results["settings"]["threads"]
        self.steps = {(r["impl"], r["batch_size"], r["block_size"], r["vocab_size"],
                       r["threads"]): r for r in results["steps"]}
        self.seed = {(r["impl"], r["cache"]): r for r in results["seed_job"]}
        floors = results.get("floors") or {}
        self.floors_status = floors
        self.floors = {(f["batch_size"], f["block_size"], f["vocab_size"]): f
                       for f in floors.get("floors", [])}

    def step(self, impl, b, t, v, threads=None):
        return self.steps.get((impl, b, t, v, threads or self.threads))

    def best_peer(self, b, t, v):
        """The peer row with the smallest median step at this size; where no peer was
        measured, a row saying why (status 'missing'), or None if no peer was tried."""
        rows = [self.step(impl, b, t, v) for impl in PEERS]
        measured = [row for row in rows if ok(row)]
        if measured:
            return min(measured, key=lambda row: row["median_s"])
        tried = [row for row in rows if row is not None]
        if not tried:
            return None
        return {"impl": "best peer", "short": "best peer", "label": "every peer",
                "status": "missing", "reason": "; ".join(why_missing(row) for row in tried)}

    def floor(self, b, t, v):
        """floors.py's row for this size, or None."""
        return self.floors.get((b, t, v))

    def limit_fraction(self, row):
        """floor / the row's median step time, or None without both."""
        if not ok(row):
            return None
        floor = self.floor(row["batch_size"], row["block_size"], row["vocab_size"])
        if floor is None or row["threads"] != self.threads:
            return None
        return floor["floor_s"] / row["median_s"]


def ok(row):
    return row is not None and row.get("status") == "ok"


def why_missing(row):
    if row is None:
        return "not measured in this run"
    reason = f" ({row['reason']})" if row.get("reason") else ""
    return f"{row['label']}: {row['status']}{reason}"


def format_seconds(s):
    for unit, scale in (("s", 1), ("ms", 1e-3), ("µs", 1e-6)):
        if s >= scale or unit == "µs":
            return f"{s / scale:.3g} {unit}"


def format_rate(r):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3), ("", 1)):
        if r >= scale or unit == "":
            return f"{r / scale:.3g}{unit}"


def format_ratio(r):
    return f"{r:,.0f}×" if r >= 100 else f"{r:.3g}×"


def format_percent(fraction):
    return f"{100 * fraction:.2g}%" if fraction < 0.1 else f"{100 * fraction:.0f}%"


def format_mib(n_bytes):
    mib = n_bytes / MIB
    return f"{mib:,.1f}" if mib < 10 else f"{mib:,.0f}"


def format_value(value, key):
    return format_seconds(value) if key.endswith("_s") else f"{format_mib(value)} MiB"
