"""Summaries of the raw runs, and the markdown tables printed from them.

Everything here reads only the result dictionaries that bench/run.py saves as
JSON, so ``run.py --report`` prints the same tables from saved files.
"""

from __future__ import annotations

import statistics
from typing import Any

from matrix import COLUMNS, LABELS, OURS, SHORT

SCHEMA = 2
TIMES, DASH = "\u00d7", "\u2013"  # the table's "x" and "-", spelled out for ruff


def summarize(runs: list[dict[str, Any]], base: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians (and ranges) of one cell's runs; ratios to the row's unmonitored runs."""

    def med(key: str, rs: list[dict[str, Any]]) -> float | None:
        values = [r[key] for r in rs if r.get(key) is not None]
        return statistics.median(values) if values else None

    walls = [r["wall"] for r in runs]
    out: dict[str, Any] = {
        "n": len(runs),
        "wall_median": statistics.median(walls),
        "wall_min": min(walls),
        "wall_max": max(walls),
        "elapsed_median": med("elapsed", runs),
        "cpu_median": med("cpu", runs),
        "maxrss_mib_median": med("maxrss_mib", runs),
        "exit_after_end_median": med("exit_after_end", runs),
        "stop_ms_median": med("stop_ms", runs),
        "stop_ms_max": max((r["stop_ms"] for r in runs if r.get("stop_ms") is not None),
                           default=None),
        "sample_hz_median": med("sample_hz", runs),
    }
    if base:
        by_round = {r["round"]: r["wall"] for r in base}
        base_wall = statistics.median(by_round.values())
        # Each round pairs this cell's run with the unmonitored run of the same round:
        # the spread of those ratios is the honest range of the headline ratio.
        paired = [r["wall"] / by_round[r["round"]] for r in runs if r["round"] in by_round]
        out["ratio"] = out["wall_median"] / base_wall
        out["ratio_min"] = min(paired) if paired else None
        out["ratio_max"] = max(paired) if paired else None
        out["elapsed_ratio"] = out["elapsed_median"] / med("elapsed", base)
        out["cpu_ratio"] = out["cpu_median"] / med("cpu", base)
        out["exit_delay_ms"] = (out["exit_after_end_median"] - med("exit_after_end", base)) * 1000
    return out


# --- the tables -----------------------------------------------------------------


def _cell_status(res: dict[str, Any], row: str, column: str) -> str | None:
    """A short text for a cell without numbers, or None when it has numbers."""
    if column in res["na"]:
        return "n/a"
    if column in res["skipped"]:
        return "skipped"
    failed = res["failed"].get(row, {})
    if column in failed:
        return "**FAILED**"
    if column not in res["cells"].get(row, {}):
        return "n/a" if column in res.get("na_rows", {}).get(row, {}) else "\u2014"
    return None


def _grid(results: list[dict[str, Any]], title: str, fmt: Any,
          columns_filter: Any = None) -> list[str]:
    columns = [c for c in COLUMNS if any(c in r["columns"] for r in results)]
    if columns_filter is not None:
        columns = [c for c in columns if columns_filter(c)]
    lines = [f"**{title}**", "",
             "| Python | workload | " + " | ".join(SHORT[c] for c in columns) + " |",
             "|---|---|" + "---:|" * len(columns)]
    for res in results:
        py = res["machine"]["python"]
        for row in res["rows"]:
            cells = []
            for column in columns:
                status = _cell_status(res, row["name"], column)
                cells.append(status if status is not None
                             else fmt(res["cells"][row["name"]][column], column))
            lines.append(f"| {py} | {row['name']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


def _ratio(s: dict[str, Any], column: str) -> str:
    if column == "unmonitored":
        return f"{s['wall_median']:.2f} s"
    rng = ""
    if s.get("ratio_min") is not None:
        rng = f" ({s['ratio_min']:.2f}{DASH}{s['ratio_max']:.2f})"
    return f"{s['ratio']:.2f}{TIMES}{rng}"


def _work(s: dict[str, Any], column: str) -> str:
    if column == "unmonitored":
        return f"{s['elapsed_median']:.2f} s"
    return f"{s['elapsed_ratio']:.2f}{TIMES}"


def _cpu(s: dict[str, Any], column: str) -> str:
    if column == "unmonitored":
        return f"{s['cpu_median']:.2f} s"
    return f"{s['cpu_ratio']:.2f}{TIMES}"


def _rss(s: dict[str, Any], column: str) -> str:
    return f"{s['maxrss_mib_median']:.0f}"


def _exit(s: dict[str, Any], column: str) -> str:
    if column == "unmonitored":
        return f"({s['exit_after_end_median'] * 1000:.0f})"
    return f"{s['exit_delay_ms']:+.0f}"


def _ours_table(results: list[dict[str, Any]]) -> list[str]:
    columns = [c for c in COLUMNS if c in OURS and any(c in r["columns"] for r in results)]
    head = ["Python", "workload"]
    for c in columns:
        head += [f"{SHORT[c]}: stop() ms", f"{SHORT[c]}: stop() ms, browser",
                 f"{SHORT[c]}: Hz achieved"]
    lines = ["**stethoscope: stop() latency (median of the timing rounds, without a "
             "browser; and in the browser pass, with the page open) and the sampler's "
             "achieved rate (100 Hz requested)**", "",
             "| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for res in results:
        py = res["machine"]["python"]
        for row in res["rows"]:
            cells = []
            for c in columns:
                status = _cell_status(res, row["name"], c)
                if status is not None:
                    cells += [status, status, status]
                    continue
                s = res["cells"][row["name"]][c]
                b = res.get("browser", {}).get(row["name"], {}).get(c, {})
                browser = (f"{b['stop_ms']:.0f}" if "stop_ms" in b
                           else ("error" if "error" in b else "\u2014"))
                hz = s.get("sample_hz_median")
                cells += [f"{s['stop_ms_median']:.0f}", browser,
                          f"{hz:.0f}" if hz is not None else "?"]
            lines.append(f"| {py} | {row['name']} | " + " | ".join(cells) + " |")
    return [*lines, ""]


TARGETS = [
    # (column, limit as a ratio, for which Pythons, what it is)
    ("stethoscope-sample", 1.03, None, "sample at 100 Hz"),
    ("stethoscope-lines", 1.15, None, "lines"),
    ("stethoscope-trace", 2.5, (3, 12), "trace on 3.12+"),
    ("stethoscope-trace", 5.0, (3, 10), "trace on 3.10/3.11"),
]


def _version(py: str) -> tuple[int, int]:
    major, minor = py.split(".")[:2]
    return int(major), int(minor)


def targets(results: list[dict[str, Any]]) -> list[str]:
    """One line per target and interpreter: the figure measured, met or MISSED."""
    out = []
    for res in results:
        py = res["machine"]["python"]
        v = _version(py)
        cpu = res["cells"].get("cpu", {})
        for column, limit, since, what in TARGETS:
            if (since == (3, 12) and v < (3, 12)) or (since == (3, 10) and v >= (3, 12)):
                continue
            if column not in cpu:
                why = res["na"].get(column) or res["failed"].get("cpu", {}).get(column)
                if why:
                    out.append(f"- {py} {what} {DASH} cpu.py {LABELS[column]}: not measured "
                               f"({why.splitlines()[0]})")
                continue
            ratio = cpu[column]["ratio"]
            verdict = "met" if ratio <= limit else "**MISSED**"
            out.append(f"- {py} {what} {DASH} cpu.py: {ratio:.2f}{TIMES} "
                       f"(target {limit}{TIMES}): {verdict}")
        delays = [(row, c, s["exit_delay_ms"]) for row, cells in res["cells"].items()
                  for c, s in cells.items() if c in OURS]
        if delays:
            row, c, worst = max(delays, key=lambda d: d[2])
            verdict = "met" if worst <= 50 else "**MISSED**"
            out.append(f"- {py} exit delay {DASH} worst stethoscope cell ({row}, {SHORT[c]}): "
                       f"{worst:+.0f} ms (target 50 ms): {verdict}")
        stops = [(row, c, b["stop_ms"]) for row, cells in res.get("browser", {}).items()
                 for c, b in cells.items() if "stop_ms" in b]
        if stops:
            row, c, worst = max(stops, key=lambda d: d[2])
            med = statistics.median(s[2] for s in stops)
            verdict = "met" if worst <= 100 else "**MISSED**"
            out.append(f"- {py} stop() with a browser connected {DASH} median {med:.0f} ms, "
                       f"worst ({row}, {SHORT[c]}) {worst:.0f} ms (target 100 ms): {verdict}")
        elif res.get("browser_unavailable"):
            out.append(f"- {py} stop() with a browser connected: not measured "
                       f"({res['browser_unavailable']})")
    return out


def table(results: list[dict[str, Any]]) -> str:
    first = results[0]
    m = first["machine"]
    runs = "/".join(str(r) for r in sorted({r["runs"] for r in results}))
    lines = _grid(results, f"Wall time, ratio to unmonitored (median of {runs} runs; in "
                  f"brackets the min{DASH}max of the per-round ratios)", _ratio)
    lines += _grid(results, "The workload's own time (measured inside the process, start-up "
                   "and exit excluded), ratio to unmonitored", _work)
    lines += _grid(results, "Process CPU time (user+sys), ratio to unmonitored", _cpu)
    lines += _grid(results, "Peak RSS of the process, MiB", _rss)
    lines += _grid(results, "Exit delay: workload's last line to process exit, ms, "
                   "minus unmonitored's (in brackets)", _exit)
    lines += _ours_table(results)
    lines += ["**Targets** (CPU workload unless said otherwise)", "", *targets(results), ""]
    scales = ", ".join(f"{r['name']} {r['scale']:g}" for r in first["rows"])
    lines.append(
        f"Each run a fresh process, every cell once per round, columns in an order that "
        f"rotates each round; wall time from outside (start-up and exit included); CPU "
        f"and peak RSS from the kernel (wait4) for the process and the children it "
        f"waited for. Workload scales: {scales}. Machine: {m['cpu']}, {m['nproc']} CPUs, "
        f"{m['uname'].split()[2]}; {m['date']}."
    )
    busy = [f"{r['machine']['python']} (load up to {max(r['loadavg_per_round']):.1f})"
            for r in results if r.get("busy")]
    if busy:
        lines += ["", f"**Warning**: the machine was busy during the runs on "
                  f"{', '.join(busy)}: the load average exceeded the number of CPUs, so "
                  f"other processes competed for them; those numbers are noisy."]
    changed = [r["machine"]["python"] for r in results if r.get("source_changed")]
    if changed:
        lines += ["", f"**Warning**: stethoscope's sources changed while the runs on "
                  f"{', '.join(changed)} were going on: those rounds mix two versions; "
                  f"run again."]
    explained: list[str] = []
    for res in results:
        py = res["machine"]["python"]
        for column, why in res["na"].items():
            explained.append(f"- {py} {LABELS[column]}: n/a {DASH} {why}")
        for column, why in res["skipped"].items():
            explained.append(f"- {py} {LABELS[column]}: skipped {DASH} {why}")
        for row, failed in res["failed"].items():
            for column, why in failed.items():
                explained.append(f"- {py} {row} {LABELS[column]}: FAILED {DASH} "
                                 f"{why.splitlines()[0]}")
    notes: list[str] = []
    for res in results:
        for column in COLUMNS:
            for note in res["notes"].get(column, []):
                if note.startswith("NOTE ") and f"- {note[5:]}" not in notes:
                    notes.append(f"- {note[5:]}")
    if explained or notes:
        lines += ["", *explained, *notes]
    return "\n".join(lines)
