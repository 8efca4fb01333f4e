"""One run's results read: its targets (targets(): what is measured, the target, the requirement
it checks) and results.md's tables; the plot is plot.py's. Ratios are of one run's medians."""

import re
from functools import partial
from pathlib import Path

from peers import C_STEP, COMPILED, TOOLS


class Lookup:
    """One run's rows: row((impl, B, T, V[, threads])) is a step's, row(("seed", job,
    cache)) a seed job's."""

    def __init__(self, results):
        self.threads = results["settings"]["threads"]
        self.steps = {(r["impl"], r["batch_size"], r["block_size"], r["vocab_size"],
                       r["threads"]): r for r in results["steps"]}
        self.seed = {(r["impl"], r["cache"]): r for r in results["seed_job"]}
        self.floors_status = results.get("floors") or {}
        self.floors = {(f["batch_size"], f["block_size"], f["vocab_size"]): f
                       for f in self.floors_status.get("floors", [])}

    def row(self, key):
        return self.seed.get(key[1:]) if key[0] == "seed" else self.step(*key)

    def step(self, impl, b, t, v, threads=None):
        return self.steps.get((impl, b, t, v, threads or self.threads))

    def best_peer(self, b, t, v):
        """The tool peer (not the hand-written C step) row with the smallest median step at
        this size; where none was measured, a row saying why (status 'missing'), or None if
        no peer was tried."""
        tried = [row for row in (self.step(impl, b, t, v) for impl in TOOLS) if row is not None]
        if measured := [row for row in tried if ok(row)]:
            return min(measured, key=lambda row: row["median_s"])
        return {"impl": "best peer", "short": "best peer", "label": "every peer",
                "status": "missing",
                "reason": "; ".join(why_missing(row) for row in tried)} if tried else None

    def limit_fraction(self, row):
        """The hardware floor / the row's median step time, or None without both."""
        floor = ok(row) and row["threads"] == self.threads and self.floors.get(
            (row["batch_size"], row["block_size"], row["vocab_size"]))
        return floor["floor_s"] / row["median_s"] if floor else None

    def c_step_ratio(self, row):
        """The row's median step / the C step's at its size and threads, or None without both."""
        if not ok(row):
            return None
        c_step = self.step(C_STEP, row["batch_size"], row["block_size"], row["vocab_size"],
                           row["threads"])
        return row["median_s"] / c_step["median_s"] if ok(c_step) else None


def ok(row):
    return row is not None and row.get("status") == "ok"


def why_missing(row):
    if row is None:
        return "not measured in this run"
    reason = f" ({row['reason']})" if row.get("reason") else ""
    return f"{row['label']}: {row['status']}{reason}"


def format_scaled(x, units):
    """x to 3 digits in the first of units ((scale, name), largest first) it reaches, else in
    the last."""
    scale, name = next(((scale, name) for scale, name in units if x >= scale), units[-1])
    return f"{x / scale:.3g}{name}"


def format_seconds(s):
    return format_scaled(s, ((1, " s"), (1e-3, " ms"), (1e-6, " µs")))


def format_rate(r):
    return format_scaled(r, ((1e9, "G"), (1e6, "M"), (1e3, "k"), (1, "")))


def format_ratio(r):
    return f"{r:,.0f}×" if r >= 100 else f"{r:.3g}×"


def format_percent(fraction):
    return f"{100 * fraction:.2g}%" if fraction < 0.1 else f"{100 * fraction:.0f}%"


def format_mib(n_bytes):
    mib = n_bytes / 2**20
    return f"{mib:,.1f}" if mib < 10 else f"{mib:,.0f}"


# the targets: the kinds of figure, then the table of targets


def ratio(look, name, target, base, new, key, names=("PyTorch", "npbigram"), inverse=False):
    """How many times smaller row new's `key` is than row base's (keys for look.row, or
    rows); met when at least `target` (with inverse, how many times larger, met when at most
    `target`). The note gives both values, each after its name in `names` (base's, new's)."""
    base, new = (look.row(r) if isinstance(r, tuple) else r for r in (base, new))
    figure = {"name": name, "target": f"{'≤' if inverse else '≥'} {target:g}×", "value": None,
              "met": None}
    if not (ok(base) and ok(new)):
        missing = dict.fromkeys(why_missing(row) for row in (base, new) if not ok(row))
        return {**figure, "text": "n/a", "note": "; ".join(missing)}
    value = new[key] / base[key] if inverse else base[key] / new[key]
    shown = [format_seconds(row[key]) if key.endswith("_s") else f"{format_mib(row[key])} MiB"
             for row in (base, new)]
    note = ", ".join(f"{who} {text}" for who, text in zip(names, shown, strict=True))
    return {**figure, "value": value, "text": format_ratio(value),
            "met": value <= target if inverse else value >= target, "note": note}


def versus_best_peer(look, name, target, impl, b, t, v):
    """How many times faster than the best peer impl's step is; the note adds the fraction of
    the hardware floor's limit it reaches and the peers that were not compared."""
    peer, row = look.best_peer(b, t, v), look.step(impl, b, t, v)
    figure = ratio(look, f"{name}: vs the best peer", target, peer, row, "median_s",
                   (f"best peer ({peer['short']})" if ok(peer) else "best peer", "npbigram"))
    if (fraction := look.limit_fraction(row)) is not None:
        figure["note"] += f"; npbigram at {format_percent(fraction)} of the hardware limit"
    absent = [r for r in (look.step(p, b, t, v) for p in TOOLS) if r is not None and not ok(r)]
    if ok(peer) and absent:  # the best of fewer peers: say which ones are missing
        figure["note"] += "; not compared: " + ", ".join(f"{r['short']} ({r['status']})"
                                                          for r in absent)
    return figure


def bandwidth_fraction(look, name, target, b, t, v, impl=None):
    """AdamW's bytes at the streaming kernel's measured bandwidth / the time of impl's step, or
    without impl of npbigram's AdamW pass alone (floors.py's `opt.step()`, timed as the streaming
    kernel is): the fraction of the machine's bandwidth reached if only those bytes moved (at
    least `target`)."""
    figure = {"name": name, "target": f"≥ {format_percent(target)}", "value": None, "met": None}
    row, floor = look.step(impl, b, t, v) if impl else None, look.floors.get((b, t, v))
    if floor is None or (impl and not ok(row)):
        return {**figure, "text": "n/a",
                "note": why_missing(row) if impl and not ok(row) else
                "no hardware floor in this run"}
    seconds, what = (row["median_s"], "step") if impl else (floor["adamw_s"], "AdamW pass")
    fraction, rate = floor["memory_s"] / seconds, floor["bandwidth_bytes_per_s"] / 1e9
    return {**figure, "value": fraction, "text": format_percent(fraction),
            "met": fraction >= target,
            "note": f"{floor['memory_bytes'] / 1e6:,.0f} MB at {rate:.3g} GB/s = "
                    f"{format_seconds(floor['memory_s'])}; {what} {format_seconds(seconds)}"}


def at_most(look, name, limit, row, key):
    figure = {"name": name, "target": f"≤ {limit / 1e9:g} GB", "value": None, "met": None}
    if not ok(row := look.row(row)):
        return {**figure, "text": "n/a", "note": why_missing(row)}
    return {**figure, "value": row[key], "text": f"{row[key] / 1e9:.2f} GB",
            "met": row[key] <= limit, "note": ""}


BEST_PEER, ENGINE = "Against the best peer", "The engine's targets: against PyTorch eager"
PEER_SIZES = [(32, 8, 65), (512, 64, 65), (4096, 256, 65), (32, 8, 4096)]  # (B, T, V)
FAST_PATHS = [("public API, return_logits=False", "numba-nologits"),
              ("Trainer loop", "numba-loop")]
LOGITS_PATH = ("public API returning the logits", "numba")
ENGINE_PATHS = [("public API", "numba", "numba-pair-counts"),  # (path, gather/scatter, pair-counts)
                ("public API, return_logits=False", "numba-nologits",
                 "numba-pair-counts-nologits"),
                ("Trainer loop", "numba-loop", "numba-loop-pair-counts")]
TORCH, COLD, WARM = ("seed", "torch", "-"), ("seed", "numba", "cold"), ("seed", "numba", "warm")
SEED_JOB = "npbigram train vs PyTorch bigram.py"


def targets(n):
    """The targets of a run on n threads, in the order of the tables: (group, what is measured,
    the target, measure(look, what, target) giving its figure, the requirement it checks)."""
    return [
        *((BEST_PEER, f"{path}, B={b} T={t} V={v}", 3 if v == 4096 else 5,
           partial(versus_best_peer, impl=impl, b=b, t=t, v=v),
           "never writing the logits: 5× the fastest CPU peer, 3× where AdamW's bytes bound it")
          for path, impl in FAST_PATHS for b, t, v in PEER_SIZES),
        *((BEST_PEER, f"{LOGITS_PATH[0]}, B={b} T={t} V={v}", 2,
           partial(versus_best_peer, impl=LOGITS_PATH[1], b=b, t=t, v=v),
           "the default public API, which returns the logits, beats the fastest peer 2×")
          for b, t, v in PEER_SIZES),
        (BEST_PEER, "the AdamW pass alone (opt.step), V=4096: fraction of the measured "
         "bandwidth", 0.8, partial(bandwidth_fraction, b=32, t=8, v=4096),
         "the AdamW pass at 80% of the bandwidth measured in the same run"),
        *((BEST_PEER, f"{path}, B=32 T=8 V=4096: fraction of the measured bandwidth",
           0.8, partial(bandwidth_fraction, impl=impl, b=32, t=8, v=4096),
           "AdamW's memory traffic at 80% of the bandwidth measured in the same run")
          for path, impl in [*FAST_PATHS, LOGITS_PATH]),
        (BEST_PEER, f"seed job, first run with an empty JIT cache, whole process: {SEED_JOB}",
         2.5, partial(ratio, base=TORCH, new=COLD, key="wall_s"), "first run 2.5× sooner"),
        (BEST_PEER, f"seed job, warm JIT cache, whole process: {SEED_JOB}", 15,
         partial(ratio, base=TORCH, new=WARM, key="wall_s"), "warm run 15× sooner"),
        (BEST_PEER, "seed job, training time npbigram train reports: cold run / warm run",
         3, partial(ratio, base=WARM, new=COLD, key="loop_s", names=("warm", "cold"),
                    inverse=True), "compiling costs at most 3× the warm training time"),
        *((ENGINE, f"one step through the {path}, B={b} T={t} V=65: numba vs PyTorch",
           target, partial(ratio, base=("torch", b, t, 65), new=(impl, b, t, 65),
                           key="median_s"),
           "the numba step 5× PyTorch eager's at bigram.py's size, 10× at 2^20 tokens")
          for path, impl, _ in ENGINE_PATHS[:2]
          for b, t, target in [(32, 8, 5), (4096, 256, 10)]),
        (ENGINE, f"seed job, whole process, warm JIT cache: {SEED_JOB}", 4,
         partial(ratio, base=TORCH, new=WARM, key="wall_s"), "warm run 4× sooner"),
        (ENGINE, f"seed job, training loop: {SEED_JOB}", 25,
         partial(ratio, base=TORCH, new=WARM, key="loop_s"), "training steps 25× faster"),
        (ENGINE, "seed job, cold first run (empty JIT cache) vs PyTorch bigram.py's whole "
         "job", 1, partial(ratio, base=TORCH, new=COLD, key="wall_s"),
         "a first run, compiling every kernel, no slower than PyTorch's"),
        *(target for path, gather, pairs in ENGINE_PATHS for target in [
            (ENGINE, f"pair-counts step at 2^20 tokens (B=4096 T=256 V=65), {path}: vs "
             "PyTorch", 200, partial(ratio, base=("torch", 4096, 256, 65),
                                     new=(pairs, 4096, 256, 65), key="median_s"),
             "at small V and 2^20 tokens the pair-counts gradient 200× PyTorch's step"),
            (ENGINE, f"gather/scatter at 2^20 tokens, V=65, {path}: {n} threads vs 1", 1.7,
             partial(ratio, base=(gather, 4096, 256, 65, 1) if n > 1 else None,
                     new=(gather, 4096, 256, 65), key="median_s",
                     names=("1 thread", f"{n} threads")),
             "the step scales with threads: 1.7× on two"),
            (ENGINE, f"peak memory, V=4096, 65,536 tokens/step, gather/scatter, {path}: "
             "PyTorch's / npbigram's", 10, partial(ratio, base=("torch", 512, 128, 4096),
                                                   new=(gather, 512, 128, 4096),
                                                   key="peak_mem_bytes"),
             "a step needs a tenth of PyTorch's memory"),
            (ENGINE, f"whole-process peak RSS, V=4096, 2^20 tokens/step, gather/scatter, "
             f"{path}", 2e9, partial(at_most, row=(gather, 4096, 256, 4096),
                                     key="process_peak_rss_bytes"),
             "training at 2^20 tokens per step with V = 4096 fits in 2 GB")]),
    ]


def derive_figures(results):
    """Each target's figure {group, name, target, value, text, met, note, requirement}."""
    look = Lookup(results)
    return [{"group": group, **measure(look, what, target), "requirement": requirement}
            for group, what, target, measure, requirement in targets(look.threads)]


class Notes:
    """Numbered notes for table cells that cannot hold the whole reason."""

    def __init__(self):
        self.texts = {}  # text -> its number

    def ref(self, text):
        return f"[{self.texts.setdefault(text, len(self.texts) + 1)}]"

    def cell(self, row):
        """'skipped [2]' for a row not measured; a peer not installed says how to install it."""
        if not row.get("reason"):
            return row["status"]
        if row["status"] == "not installed":
            return f"not installed (`{row['reason']}`)"
        return f"{row['status']} " + self.ref(f"{row['label']}: {row['reason']}")

    def warned(self, row):
        """' [3]' after a measured cell, for each warning its implementation raised."""
        return "".join(" " + self.ref(f"{row['label']} warned: {w}")
                       for w in row.get("warnings", []))


def table(header, rows):
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return "\n".join(lines + ["| " + " | ".join(str(c) for c in row) + " |" for row in rows])


# results.md: the machine, the targets, then one section per table (SECTIONS), the prose from
# sections.md


def read_sections(path=Path(__file__).with_name("sections.md")):
    """{heading: its paragraph, lines joined by spaces} of sections.md, in order."""
    blocks = re.split(r"^(?=#)", path.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]
    return {heading: " ".join(filter(None, body.splitlines()))
            for heading, _, body in (block.partition("\n") for block in blocks)}


def render_markdown(results):
    look, notes, prose = Lookup(results), Notes(), read_sections()
    title = next(iter(prose))  # the first section: the machine
    parts = [title, prose[title].format(**machine_fields(results)), "## Targets"]
    for group in dict.fromkeys(f["group"] for f in results["figures"]):
        parts += [f"### {group}", table(["figure", "target", "measured", "met", "detail"], [
            (f["name"], f["target"], f["text"], {True: "yes", False: "**no**", None: "-"}[f["met"]],
             f["note"]) for f in results["figures"] if f["group"] == group])]
    s, floors = results["settings"], look.floors_status
    missing = f" **Not measured in this run**: {floors.get('reason', 'no floors in the results')}."
    fields = {"threads": look.threads, "exp": floors.get("exp", "exp_f32"),
              "missing": "" if floors.get("status") == "ok" else missing,
              "seed_iters": s["seed_iters"], "seed_repeats": s["seed_repeats"],
              "phase_runs": (results.get("phases") or {}).get("runs", 0),
              "compile_runs": (results.get("compile_times") or {}).get("repeats", 0),
              "seed_data": s["seed_data"] and Path(s["seed_data"]).name}
    for heading, section_table in SECTIONS.items():  # in this order: the notes are numbered
        if body := section_table(results, look, notes):
            parts += [heading, prose[heading].format(**fields), body]
    if notes.texts:
        parts += ["## Notes", "\n".join(f"{i}. {text}" for i, text in enumerate(notes.texts, 1))]
    return "\n\n".join(parts) + "\n"


QUICK = (" **Quick run** (`--quick`): small sizes and short timings, for checking the harness; "
         "its numbers are rough.")


def machine_fields(results):
    m, s = results["machine"], results["settings"]
    load = ", ".join(f"{x:.2f}" for x in results["load_average_start"][:1]
                     + results["load_average_end"][:1])
    unrecorded = dict.fromkeys(("jax", "jaxlib", "optax", "mlx", "autograd", "tinygrad", "cc"),
                               "not recorded")  # results.json of an older suite
    return {**unrecorded, **m,
            "memory_gib": m["memory_bytes"] / 2**30, "threads": s["threads"], "load": load,
            "duration_s": results["duration_s"], "command": results["command"],
            "created": results["created"], "quick": QUICK if s["quick"] else ""}


def impl_columns(results):
    """(impl, short name, label) of the implementations in this run, in table order."""
    return list({r["impl"]: (r["impl"], r["short"], r["label"]) for r in results["steps"]}.values())


def size_keys(results, threads):
    keys = {(r["vocab_size"], r["batch_size"], r["block_size"]) for r in results["steps"]
            if r["threads"] == threads}
    return sorted(keys, key=lambda k: (k[0], k[1] * k[2]))


def size_table(results, look, format_cell, before=(), after=()):
    """One row per size, one column per implementation, cells from format_cell(row); before
    and after: (header, cell(b, t, v)) columns around the implementations'."""
    impls = impl_columns(results)
    rows = [[v, f"{b}×{t}", f"{b * t:,}", *(cell(b, t, v) for _, cell in before),
             *(format_cell(look.step(impl, b, t, v)) for impl, _, _ in impls),
             *(cell(b, t, v) for _, cell in after)] for v, b, t in size_keys(results, look.threads)]
    header = ["V", "B×T", "tokens/step", *(h for h, _ in before),
              *(short for _, short, _ in impls), *(h for h, _ in after)]
    key = "Columns: " + "; ".join(f"**{short}**: {label}" for _, short, label in impls) + "."
    return "\n\n".join([key, table(header, rows)])


def steps_table(results, look, notes):
    def cell(row):
        if not ok(row):
            return notes.cell(row)
        peer = look.best_peer(row["batch_size"], row["block_size"], row["vocab_size"])
        versus = (f" · {format_ratio(peer['median_s'] / row['median_s'])}"
                  if ok(peer) and row["impl"] not in TOOLS else "")
        return (f"{format_seconds(row['median_s'])} · {format_rate(row['tokens_per_s'])}/s"
                f"{versus}{notes.warned(row)}")

    def floor_cell(b, t, v):
        floor = look.floors.get((b, t, v))
        return f"{format_seconds(floor['floor_s'])} ({floor['bound']})" if floor else "-"

    def best_peer_cell(b, t, v):
        if (peer := look.best_peer(b, t, v)) is None:
            return "-"
        return notes.cell(peer) if not ok(peer) else (
            f"{peer['short']} {format_seconds(peer['median_s'])}")

    return size_table(results, look, cell, before=[("floor", floor_cell)],
                      after=[("best peer", best_peer_cell)])


def floors_tables(results, look, notes):
    """The floors at each size, then each implementation's fraction of its size's limit."""
    rows = [[v, f"{b}×{t}", f"{f['distinct_rows']:,} × {v:,} = {f['exp_count']:,}",
             format_seconds(f["exp_s"]), f"{f['memory_bytes'] / 1e6:,.3g} MB",
             format_seconds(f["memory_s"]), f"{f['bandwidth_bytes_per_s'] / 1e9:.3g} GB/s",
             format_seconds(f["adamw_s"]), f"{f['batch_bytes'] / 1e6:,.3g} MB",
             format_seconds(f["batch_s"]),
             f"{format_seconds(f['floor_s'])} ({f['bound']})"]
            for v, b, t in size_keys(results, look.threads) if (f := look.floors.get((b, t, v)))]

    def limit_cell(row):
        """The fraction of the floor reached, then how many times the C step's time."""
        if row is not None and not ok(row):
            return notes.cell(row)
        fraction, c_step = look.limit_fraction(row), look.c_step_ratio(row)
        return " · ".join([format_percent(fraction) if fraction is not None else "-",
                           *([f"{format_ratio(c_step)} C"] if c_step is not None else [])])

    return "\n\n".join([table(["V", "B×T", "exponentials E", "exp floor", "AdamW bytes",
                               "AdamW floor", "AdamW bandwidth", "AdamW pass", "batch bytes",
                               "batch floor", "floor"], rows),
                        size_table(results, look, limit_cell)])


def compile_table(results, look, notes):
    rows = []
    for row in [row for row in results["steps"]
                if row["impl"] in COMPILED and row["threads"] == look.threads]:
        size = [row["short"], row["vocab_size"], f"{row['batch_size']}×{row['block_size']}"]
        rows.append([*size, notes.cell(row), "-", "-", "-"] if not ok(row) else [
            *size, format_seconds(row["compile_s"]), format_seconds(row["tiny_first_call_s"]),
            format_seconds(row["median_s"]), f"{row['compile_s'] / row['median_s']:,.0f}"])
    return rows and table(["peer", "V", "B×T", "compile", "first compile in the process", "step",
                           "steps to repay"], rows)


def memory_table(results, look, notes):
    return size_table(results, look,
                      lambda row: format_mib(row["peak_mem_bytes"]) if ok(row) else notes.cell(row))


def scaling_table(results, look, notes):
    """Rows of the implementations timed on 1 thread, beside the same size on look.threads."""
    rows = []
    for one in [row for row in results["steps"] if row["threads"] == 1 < look.threads]:
        many = look.step(one["impl"], one["batch_size"], one["block_size"], one["vocab_size"])
        rows.append([one["short"], f"{one['batch_size']}×{one['block_size']}", one["vocab_size"],
                     *(format_seconds(row["median_s"]) if ok(row) else notes.cell(row)
                       for row in (one, many)),
                     format_ratio(one["median_s"] / many["median_s"]) if ok(one) and ok(many)
                     else "-"])
    return rows and table(["implementation", "B×T", "V", "1 thread", f"{look.threads} threads",
                           "speed-up"], rows)


def seed_table(results, look, notes):
    torch_row, rows = look.seed.get(("torch", "-")), []
    for row in results["seed_job"]:
        if not ok(row):
            rows.append([row["label"], row["cache"], notes.cell(row)] + ["-"] * 5)
            continue
        versus = [format_ratio(torch_row[key] / row[key]) if ok(torch_row) else "-"
                  for key in ("wall_s", "loop_s")]
        rows.append([row["label"], row["cache"], format_seconds(row["wall_s"]),
                     format_seconds(row["loop_s"]), format_rate(row["loop_tokens_per_s"]),
                     format_mib(row["peak_rss_bytes"]), *versus])
    return rows and table(["implementation", "JIT cache", "whole process", "training loop",
                           "loop tokens/s", "peak RSS MiB", "whole process vs PyTorch",
                           "loop vs PyTorch"], rows)


def phases_table(results, look, notes):
    """The warm seed job's process phase by phase: median seconds, share of the whole."""
    if not (phases := results.get("phases")):
        return None
    if not ok(phases):
        return f"{phases['status']}: {phases['reason']}"
    whole = phases["phases"][-1]["median_s"]
    return table(["phase", "median", "of the whole process", "what is timed"], [
        [p["phase"], format_seconds(p["median_s"]), format_percent(p["median_s"] / whole),
         p["what"]]
        for p in phases["phases"]])


def kernel_compile_table(results, look, notes):
    """The numba seed job's compilations from an empty JIT cache, nested as they ran."""
    if not (measured := results.get("compile_times")):
        return None
    if not ok(measured):
        return f"{measured['status']}: {measured['reason']}"
    rows = [["&nbsp;" * 4 * row["depth"] + f"`{row['kernel'].removeprefix('npbigram.engine.')}`",
             format_seconds(row["cpu_s"]), format_seconds(row["self_s"])]
            for row in measured["table"]]
    rows += [["all compilation", format_seconds(measured["compile_s"]), ""],
             ["the whole job (process CPU after start-up)",
              format_seconds(measured["process_cpu_s"]), ""]]
    return table(["kernel (callees indented under their caller)", "compile CPU", "of it, itself"],
                 rows)


def baseline_table(results, look, notes):
    """Each step the baseline checkout (--baseline) ran beside this one's at the same size."""
    rows = []
    for before in results.get("baseline_steps", []):
        now = look.step(before["impl"], before["batch_size"], before["block_size"],
                        before["vocab_size"], before["threads"])
        rows.append([before["short"], before["vocab_size"],
                     f"{before['batch_size']}×{before['block_size']}",
                     *(format_seconds(row["median_s"]) if ok(row) else notes.cell(row)
                       for row in (before, now)),
                     format_ratio(before["median_s"] / now["median_s"]) if ok(before) and ok(now)
                     else "-"])
    return rows and table(["implementation", "V", "B×T",
                           f"before ({results['settings'].get('baseline')})", "now",
                           "now faster by"], rows)


SECTIONS = {"## One training step": steps_table,  # heading -> table(results, look, notes)
            "## Before and after": baseline_table,
            "## Distance from the hardware floor": floors_tables,
            "## Compile times of the peers": compile_table,
            "## Peak memory of one step": memory_table,
            "## Threads": scaling_table,
            "## Seed job": seed_table,
            "## The warm seed job phase by phase": phases_table,
            "## Compile time per kernel": kernel_compile_table}
