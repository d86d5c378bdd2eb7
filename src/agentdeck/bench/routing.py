"""How long `classify` takes: `python -m agentdeck.bench.routing`.

Why a script and not a test: timings on a shared CI machine are noise, so the figure in
docs/routing.md is reproduced by hand with this: process CPU time, best of 7 per prompt.
"""

from __future__ import annotations

import statistics
import time
import timeit

from agentdeck.routing.classifier import classify

TYPICAL = (
    "grep for TODOs in the payments module",
    "Fix the typo in the README: 'recieve' should be 'receive'",
    "Add a --verbose flag to cli.py",
    "Implement pagination for the /projects endpoint",
    "The CSV importer crashes on empty lines, fix it",
    "Write unit tests for the date parsing helpers",
    "Update api.py, models.py and views.py to add a `created_by` field",
    "Design a job queue for the video transcoding pipeline",
    "Find and fix the auth bypass in the admin routes",
    "Checkout is returning 500s in production, find out why",
    "Change the event schema in the orders, billing and shipping services",
    "Could you please grep for 'XXX' markers across the repo?",
    "Users get a KeyError when the config has no [tui] section; here is the traceback, please fix",
    "Read config.py and then add a `timeout` option to it",
)
LONG_PASTE = ("Here is the stack trace from the worker:\n"
              + "  File \"worker.py\", line 10, in run\n    raise ValueError('boom')\n" * 200
              + "Please fix the bug in the worker so it retries instead of crashing.")
LONG_PROSE = ("The service handles incoming webhooks and stores them for later processing. " * 30
              + "Add a retry to the webhook handler.")


def _best_us(text: str, number: int, repeat: int = 7, cache: bool = False) -> float:
    # CPU time of this process, best of `repeat`: on a shared machine wall time mostly measures the neighbours.
    # Uncached unless asked: the cost of reading a task the first time.
    return min(timeit.repeat(lambda: classify(text, cache=cache), number=number, repeat=repeat,
                             timer=time.process_time)) / number * 1e6


def run() -> dict[str, float]:
    per = sorted(_best_us(t, 200) for t in TYPICAL)
    return {
        "typical_median_us": statistics.median(per),
        "typical_max_us": per[-1],
        "long_paste_us": _best_us(LONG_PASTE, 20),
        "long_prose_us": _best_us(LONG_PROSE, 20),
        "long_paste_chars": float(len(LONG_PASTE)),
        "repeat_us": statistics.median(_best_us(t, 2000, cache=True) for t in TYPICAL),
    }


def main() -> None:
    r = run()
    print(f"classify, best of 7, {len(TYPICAL)} typical prompts: median {r['typical_median_us']:.1f} us, "
          f"max {r['typical_max_us']:.1f} us")
    print(f"{int(r['long_paste_chars']):,}-char pasted stack trace: {r['long_paste_us']:.0f} us; "
          f"long prose message: {r['long_prose_us']:.0f} us")
    print(f"the same task again (cached, as in an agent's tool loop): {r['repeat_us']:.1f} us")


if __name__ == "__main__":
    main()
