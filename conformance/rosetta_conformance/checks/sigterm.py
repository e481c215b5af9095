"""T-21: SIGTERM during training stops it (non-zero exit, in time), judged only when it landed in training.

A fast training run can end before the signal arrives, or the signal can land while the image
saves its model and exits 0, which is right. So the clause first takes the time of a normal
training run, sends SIGTERM half-way through by default, and when the run was over too soon
it shortens the delay or grows the workload (``repeat``: channel rows repeated) and tries again.
It fails only on evidence: the container outlived ``timeout`` after the signal (and a second
signal then; if the second one stops it, the first came before the program could take it, on a slow
host, and the run is repeated with a later signal), was killed (137), or exited 0 after working
longer than a whole normal run past the signal. When no
attempt decides, it reports INCONCLUSIVE with the manifest lines that would make it decidable.
"""

from __future__ import annotations

import math

from rosetta_conformance.checks import check
from rosetta_conformance.harness import Harness, SigtermRun
from rosetta_conformance.outcome import Inconclusive, Outcome

#: no earlier SIGTERM: an image may install its handler while it starts
MIN_DELAY = 1.0
ATTEMPTS = 4
#: the first growth of ``repeat`` (a probe: the next one is extrapolated from the two durations)
GROWTH = 10
#: never write more repeated channel data than this
MAX_BYTES = 256 * 2**20


def default_delay(normal: float | None) -> float:
    """Half a normal training run (so the signal lands mid-way), at least :data:`MIN_DELAY`."""
    return max(MIN_DELAY, normal / 2) if normal else MIN_DELAY


def ignored_after(normal: float | None) -> float:
    """An exit 0 this long after SIGTERM means the image went on training: more than a whole
    normal run, with room for a busy host (a run that only finished its save is shorter)."""
    return 1.25 * normal + 2.0 if normal else 10.0


def verdict(run: SigtermRun, normal: float | None) -> Outcome | None:
    """PASS/FAIL when the run decides the clause; None when the signal came too late to tell."""
    sent = f"docker kill -s TERM {run.delay:.1f} s into training (rows x{run.repeat})"
    if not run.landed:
        return None
    if run.exit_code is None and run.late_exit not in (None, 0, 137):
        return None  # the first signal was lost (it came while the program started), a second one worked
    if run.exit_code is None:
        return Outcome(False, f"still running {run.timeout:.0f} s after SIGTERM: PID 1 ignores or does not "
                       "forward it (a shell wrapper?)", sent, run.note)
    if run.exit_code == 137:
        return Outcome(False, "killed (137): SIGTERM was not handled", sent, run.note)
    if run.exit_code != 0:
        return Outcome(True, "", sent, run.note)
    if run.after_signal is not None and run.after_signal > ignored_after(normal):
        took = f"{normal:.1f} s" if normal else "unknown"
        return Outcome(False, f"exit 0 {run.after_signal:.1f} s after SIGTERM, longer than a whole normal training "
                       f"run ({took}): the signal did not stop training", sent, run.note)
    return None  # exit 0 soon after the signal: it may have landed after training, while saving


def _nice(n: float) -> int:
    """Round up to two significant digits (a number a person would write in a manifest)."""
    n = max(1, math.ceil(n))
    step = 10 ** max(0, len(str(n)) - 2)
    return int(math.ceil(n / step) * step)


def per_repeat(runs: list[SigtermRun]) -> float | None:
    """Seconds of training per unit of ``repeat``, from the two most different attempts."""
    timed = [r for r in runs if r.ran is not None and (not r.landed or r.exit_code == 0)]
    if len({r.repeat for r in timed}) < 2:
        return None
    lo = min(timed, key=lambda r: r.repeat)
    hi = max(timed, key=lambda r: r.repeat)
    assert lo.ran is not None and hi.ran is not None
    return (hi.ran - lo.ran) / (hi.repeat - lo.repeat)


def needed_repeat(runs: list[SigtermRun], delay: float) -> int | None:
    """The ``repeat`` at which training lasts twice the delay beyond its fixed cost, by extrapolation."""
    slope = per_repeat(runs)
    if slope is None or slope <= 0:
        return None
    base = min(runs, key=lambda r: r.repeat)
    fixed = (base.ran or 0.0) - slope * base.repeat
    return _nice((max(fixed, 0.0) + 2 * delay + 2.0) / slope)


def advice(h: Harness, runs: list[SigtermRun], delay: float) -> str:
    """The exact ``[training.sigterm]`` lines that would let the clause decide."""
    tr = h.manifest.training
    assert tr is not None
    lines = ["[training.sigterm]"]
    if tr.sigterm.hyperparameters:
        given = ", ".join(f"{k} = {v!r}" for k, v in tr.sigterm.hyperparameters.items())
        lines.append(f"hyperparameters = {{ {given} }}")
    repeat = needed_repeat(runs, delay)
    bytes_each = max(1, h.channel_bytes())
    if repeat is not None and repeat * bytes_each <= 4 * MAX_BYTES:
        lines.append(f"repeat = {repeat}")
    else:
        why = "repeating rows does not make it longer" if repeat is None else \
            f"it would need repeat = {repeat} ({repeat * bytes_each / 1e6:,.0f} MB of data)"
        lines.append(f"# training must run > {2 * delay + 2:.0f} s: {why}; use hyperparameters")
        lines.append("hyperparameters = { <one that makes fit run longer, e.g. iterations> = <larger> }")
    lines.append(f"delay = {delay:.1f}")
    lines.append(f"timeout = {tr.sigterm.timeout:.0f}")
    return "\n".join(lines)


@check("T-21")
def sigterm_training(h: Harness) -> Outcome:
    h.require_training()
    tr = h.manifest.training
    assert tr is not None
    spec = tr.sigterm
    normal: float | None = None
    if spec.delay is None:  # the default delay needs the time of a normal run
        main = h.main_training()
        normal = main.seconds if main.exit_code == 0 else None
    delay = spec.delay if spec.delay is not None else default_delay(normal)
    repeat = max(1, spec.repeat)
    max_repeat = max(repeat, MAX_BYTES // max(1, h.channel_bytes()))
    runs: list[SigtermRun] = []
    for attempt in range(ATTEMPTS):
        run = h.sigterm_run(attempt, repeat=repeat, delay=delay)
        runs.append(run)
        if normal is None and run.landed and run.exit_code == 0:
            main = h.main_training()  # an exit 0 is judged against a normal run's time
            normal = main.seconds if main.exit_code == 0 else None
        out = verdict(run, normal)
        if out is not None:
            if len(runs) > 1:
                out.received = " | ".join(r.note for r in runs)
                out.detail = (out.detail + "; " if out.detail else "") + \
                    f"decided on attempt {len(runs)} (repeat {repeat}, delay {delay:.1f} s)"
            return out
        if run.exit_code is None:  # the signal came before the program could take it: signal later
            delay = max(2 * delay, delay + 2.0)
            continue
        if not run.landed and run.exit_code not in (0, None):
            first = (run.failure or run.logs).strip().splitlines()[-1:] or [""]
            raise Inconclusive(f"the [training.sigterm] workload fails by itself before the signal (exit "
                               f"{run.exit_code}: {first[0][:200]}); fix its hyperparameters")
        if run.ran is None:
            break
        half = run.ran / 2
        if not run.landed and half >= MIN_DELAY:
            delay = half  # the run is long enough, the signal was late: send it half-way
            continue
        # the signal landed in the run's last phase (exit 0 soon after it), or the run is too short to
        # aim at: more rows make training itself longer
        delay = max(MIN_DELAY, min(delay, half))
        grown = needed_repeat(runs, delay) or repeat * GROWTH
        grown = min(max(grown, repeat * 2), max_repeat)
        if grown <= repeat:
            break
        repeat = grown
    raise Inconclusive(
        "training ended before SIGTERM could land in it, so the signal's effect is unknown ("
        + " | ".join(r.note for r in runs) + "). Add to the manifest:\n" + advice(h, runs, delay))
