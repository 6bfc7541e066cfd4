"""Runs many fuzz cases in ONE process under an address-space limit and a per-case alarm.

    python fuzz_worker.py recipes|rows CASES_FILE OUT_JSON

A case that raises (any traceback) or outlives its alarm is recorded as a failure with its
index; the summary JSON is written at the end. Run by test_fuzz.py.
"""
from __future__ import annotations

import json
import resource
import signal
import sys
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

CASE_SECONDS = 5
MEMORY_LIMIT = 6 << 30


class CaseTimeout(BaseException):
    """The per-case alarm fired."""


def _alarm(_sig: int, _frame: object) -> None:
    raise CaseTimeout()


def _run(cases: list, one) -> dict:
    failures, slowest = [], 0.0
    for i, case in enumerate(cases):
        signal.alarm(CASE_SECONDS)
        t = time.perf_counter()
        try:
            problem = one(case)
        except CaseTimeout:
            problem = f"timed out after {CASE_SECONDS} s"
        except BaseException:  # noqa: BLE001 - a traceback is exactly what the fuzz looks for
            problem = traceback.format_exc()[-1500:]
        finally:
            signal.alarm(0)
        slowest = max(slowest, time.perf_counter() - t)
        if problem:
            failures.append({"case": i, "problem": problem})
    return {"cases": len(cases), "failures": failures, "slowest_s": round(slowest, 3)}


def recipes(path: Path) -> dict:
    from qlora_studio.recipe import validate_recipe_text

    texts = json.loads(path.read_text(encoding="utf-8"))

    def one(text: str) -> str | None:
        issues = validate_recipe_text(text)
        for i in issues:
            if not isinstance(i.line, int) or i.line < 0 or not i.message:
                return f"issue without a line or message: {i}"
        return None
    return _run(texts, one)


def rows(path: Path) -> dict:
    from qlora_studio.data import BAD_ROW_KINDS, BadRow, Record, read_rows
    from qlora_studio.data.build import encode_records
    from test_data_support import fast_tokenizer, make_recipe

    recipe = make_recipe(path, max_seq_len=128, skip_bad_rows=True)
    tok = fast_tokenizer("chatml")
    lines = [n for n, raw in enumerate(path.read_bytes().split(b"\n"), start=1) if raw.strip()]
    signal.alarm(60)
    read = list(read_rows(str(path), base_dir=None))
    signal.alarm(0)
    named = sorted(r.line for r in read)
    report: dict = {}
    if named != lines:
        report["unnamed_lines"] = sorted(set(lines) - set(named))[:20]
        report["extra_lines"] = sorted(set(named) - set(lines))[:20]

    def one(row) -> str | None:
        if isinstance(row, BadRow):
            return None if row.kind in BAD_ROW_KINDS and row.message else f"bad row without kind/message: {row}"
        good, bad = encode_records([row], recipe.data, tok, None if recipe.data.format == "text" else _template())
        if len(good) + len(bad) != 1 or (bad and bad[0].line != row.line):
            return f"row {row.line} was neither an example nor a bad row with its line"
        return None

    template_cache: list = []

    def _template():
        if not template_cache:
            from qlora_studio.data.build import compile_recipe_template

            template_cache.append(compile_recipe_template(recipe, tok))
        return template_cache[0]

    out = _run(read, one)
    out.update(report)
    out["bad_rows"] = sum(isinstance(r, BadRow) for r in read)
    out["records"] = sum(isinstance(r, Record) for r in read)
    return out


def main() -> int:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    signal.signal(signal.SIGALRM, _alarm)
    mode, cases, out = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    result = {"recipes": recipes, "rows": rows}[mode](cases)
    result["max_rss_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
