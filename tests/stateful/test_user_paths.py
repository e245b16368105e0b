"""Run the model-based test (``machine.UserPaths``) within a time budget.

Environment:

* ``FUZZ_MINUTES``: the budget (default 6; CI runs the default, ``make fuzz`` more);
* ``FUZZ_SEED``: the first seed (default: random, printed); run ``i`` uses seed + ``i``;
* ``FUZZ_STEPS``: steps per example (default 16);
* ``FUZZ_EXAMPLES``: examples per seed (default 4; a seed's first example is the minimal one);
* ``FUZZ_SHRINK_SECONDS``: how long shrinking a failure may take (default 120);
* ``FUZZ_KNOWN_BUGS=run``: also draw the operations known bugs break (see ``KNOWN_BUGS``);
* ``FUZZ_DISABLE``: more operation variants to leave out, comma-separated;
* ``FUZZ_SUMMARY``: a file to write the run's summary to (JSON).

A failure prints the seed and, from hypothesis, the shortest step sequence it found,
written as calls a developer can paste into a test.
"""

from __future__ import annotations

import json
import os
import random
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, Phase, seed, settings
from hypothesis.errors import Unsatisfiable
from hypothesis.internal.conjecture import engine
from hypothesis.stateful import run_state_machine_as_test

from tests.stateful import machine, processes

pytestmark = pytest.mark.live

MINUTES = float(os.environ.get("FUZZ_MINUTES", "6"))
STEPS = int(os.environ.get("FUZZ_STEPS", "16"))
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "4"))
# Every replay is live: shrinking gets a bounded share of the budget (hypothesis's own
# bound is 5 minutes; this lowers that constant of its engine).
engine.MAX_SHRINKING_SECONDS = int(os.environ.get("FUZZ_SHRINK_SECONDS", "120"))


DISCOVER = os.environ.get("FUZZ_DISCOVER") == "1"


def _settings() -> settings:
    phases = [Phase.generate] if DISCOVER else [Phase.generate, Phase.shrink, Phase.explain]
    return settings(
        max_examples=EXAMPLES,
        stateful_step_count=STEPS,
        deadline=None,
        database=None,
        print_blob=True,
        phases=phases,
        suppress_health_check=list(HealthCheck),
    )


def test_user_paths_keep_every_promise(capsys: pytest.CaptureFixture[str]) -> None:
    first_seed = int(os.environ.get("FUZZ_SEED") or random.randrange(2**32))
    start = time.monotonic()
    deadline = start + MINUTES * 60
    machine.STATS.deadline = deadline
    runs = 0
    failure: BaseException | None = None
    with capsys.disabled():
        print(f"\nstateful: FUZZ_SEED={first_seed} budget={MINUTES} min {processes.describe()}")
        print(f"stateful: left out (known bugs): {json.dumps(machine.disabled(), indent=1)}")
    try:
        with machine.watching_logs():
            while runs == 0 or time.monotonic() < deadline:
                current = first_seed + runs
                runs += 1

                def factory() -> machine.UserPaths:
                    return machine.UserPaths()

                try:
                    run_state_machine_as_test(seed(current)(factory), settings=_settings())
                except Unsatisfiable:  # the seed started as the budget ran out
                    break
                except Exception as error:
                    if DISCOVER:  # note the failure (the first run of it), leave it out, go on
                        found = machine.STATS.last_operation
                        first = machine.STATS.first_failure or ([], f"{error!r}")
                        machine.DISCOVERED.setdefault(found, first)
                        machine.STATS.first_failure = None
                        with capsys.disabled():
                            print(f"stateful: discovered a failure of {found} (seed {current})")
                        continue
                    failure = error
                    with capsys.disabled():
                        print(f"stateful: FAILED with seed {current} (FUZZ_SEED={current})")
                        if machine.STATS.first_failure:
                            steps, message = machine.STATS.first_failure
                            print("stateful: first failing example, as run (before shrinking):")
                            print("\n".join(["    " + line for line in steps]))
                            print(f"    # -> {message[:3000]}")
                    raise
    finally:
        summary = {
            "first_seed": first_seed,
            "seeds_run": runs,
            "minutes": round((time.monotonic() - start) / 60, 2),
            "failed": repr(failure)[:2000] if failure else None,
            "left_out": machine.disabled(),
            "discovered": {
                operation: {"steps": steps, "error": message[:1500]}
                for operation, (steps, message) in machine.DISCOVERED.items()
            },
            **machine.STATS.summary(),
        }
        with capsys.disabled():
            print(
                f"stateful: {summary['steps']} steps, {summary['checks']} invariant checks, "
                f"{summary['examples']} examples, {runs} seeds from {first_seed}, "
                f"{summary['minutes']} min"
            )
            print(f"stateful: operations drawn: {json.dumps(summary['rules'])}")
            for operation, found in summary["discovered"].items():
                print(f"stateful: DISCOVERED {operation}: {found['error'][:400]}")
                print("\n".join("    " + line for line in found["steps"]))
        if os.environ.get("FUZZ_SUMMARY"):
            Path(os.environ["FUZZ_SUMMARY"]).write_text(json.dumps(summary, indent=2) + "\n")
    assert not machine.DISCOVERED, f"broken promises: {sorted(machine.DISCOVERED)}"
