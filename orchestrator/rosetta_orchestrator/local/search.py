"""The search space of a tuning job: ``ParameterRanges``, scaling types, and the Random and Grid strategies.

Rules (SageMaker's documentation, [Define hyperparameter ranges](https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-define-ranges.html)
and [How hyperparameter tuning works](https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-how-it-works.html)):

- ``Linear``: uniform over [min, max]; ``Logarithmic``: uniform in log space, "only for ranges that
  have values greater than 0"; ``ReverseLogarithmic``: dense near 1, only for continuous ranges
  within 0 <= x < 1; ``Auto``: SageMaker chooses, locally ``Linear``.
- ``Random``: every job draws each hyperparameter independently (``RandomSeed`` when given).
- ``Grid``: "Only categorical parameters are supported"; one job per distinct combination, and
  ``MaxNumberOfTrainingJobs``, when given, must equal their number.
- ``Bayesian``: each new job's values come from the results so far, through Optuna's TPE sampler
  (:class:`Bayesian`): a maintained library, so the search is a real model-based one locally too,
  though not SageMaker's own (its service picks other values and may find another best job).
- ``Hyperband`` (SageMaker's early-stopping search) runs as ``Random`` locally; the log says so.

Values are sent as SageMaker sends hyperparameters: strings (integers without a point).
"""

from __future__ import annotations

import itertools
import math
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

STRATEGIES = ("Random", "Grid", "Bayesian", "Hyperband")
SCALINGS = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")


class RangeError(ValueError):
    """A parameter range or strategy SageMaker would refuse; the message names the range."""


@dataclass(frozen=True)
class Range:
    name: str
    kind: str  # Integer, Continuous, Categorical
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Auto"
    values: tuple[str, ...] = ()

    def draw(self, rng: random.Random) -> str:
        if self.kind == "Categorical":
            return rng.choice(self.values)
        u = rng.random()
        if self.scaling == "Logarithmic":
            x = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        elif self.scaling == "ReverseLogarithmic":
            x = 1 - math.exp(math.log(1 - self.low) + u * (math.log(1 - self.high) - math.log(1 - self.low)))
        else:
            x = self.low + u * (self.high - self.low)
        if self.kind == "Integer":  # each integer of the range equally likely (in the scaled space)
            lo, hi = int(self.low), int(self.high)
            if self.scaling == "Logarithmic":
                return str(min(hi, max(lo, math.floor(math.exp(
                    math.log(lo) + u * (math.log(hi + 1) - math.log(lo)))))))
            return str(min(hi, lo + int(u * (hi - lo + 1))))
        return repr(min(self.high, max(self.low, x)))


def _number(range_: Mapping[str, Any], key: str, kind: str) -> float:
    raw = range_.get(key)
    try:
        value = float(str(raw))
    except ValueError:
        raise RangeError(f"range {range_.get('Name')!r}: {key} {raw!r} is not a number") from None
    if kind == "Integer" and not value.is_integer():
        raise RangeError(f"range {range_.get('Name')!r}: {key} {raw!r} is not an integer")
    return value


def ranges(config: Mapping[str, Any]) -> list[Range]:
    """The ranges of ``HyperParameterTuningJobConfig.ParameterRanges``, checked as SageMaker checks them."""
    raw = config.get("ParameterRanges") or {}
    out: list[Range] = []
    for kind in ("Integer", "Continuous"):
        for r in raw.get(f"{kind}ParameterRanges") or []:
            low, high = _number(r, "MinValue", kind), _number(r, "MaxValue", kind)
            scaling = str(r.get("ScalingType") or "Auto")
            name = str(r.get("Name"))
            if scaling not in SCALINGS:
                raise RangeError(f"range {name!r}: ScalingType {scaling!r} is not one of {', '.join(SCALINGS)}")
            if low > high:
                raise RangeError(f"range {name!r}: MinValue {low:g} is above MaxValue {high:g}")
            if scaling == "Logarithmic" and low <= 0:
                raise RangeError(f"range {name!r}: Logarithmic scaling needs values greater than 0 "
                                 f"(MinValue {low:g})")
            if scaling == "ReverseLogarithmic" and (kind != "Continuous" or low < 0 or high >= 1):
                raise RangeError(f"range {name!r}: ReverseLogarithmic scaling is only for continuous ranges "
                                 f"within 0 <= x < 1 (got {kind} {low:g}..{high:g})")
            out.append(Range(name, kind, low, high, scaling))
    for r in raw.get("CategoricalParameterRanges") or []:
        values = tuple(str(v) for v in r.get("Values") or [])
        if not values:
            raise RangeError(f"range {r.get('Name')!r}: a categorical range needs at least one value")
        out.append(Range(str(r.get("Name")), "Categorical", values=values))
    names = [r.name for r in out]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise RangeError(f"hyperparameter(s) {', '.join(twice)} have more than one range")
    if not out:
        raise RangeError("ParameterRanges is empty: give at least one Integer, Continuous or Categorical range")
    return out


def candidates(strategy: str, space: list[Range], max_jobs: int | None, seed: int) -> list[dict[str, str]]:
    """The hyperparameter values of each training job, in launch order."""
    if strategy not in STRATEGIES:
        raise RangeError(f"Strategy {strategy!r} is not one of {', '.join(STRATEGIES)}")
    if strategy == "Grid":
        others = [r.name for r in space if r.kind != "Categorical"]
        if others:
            raise RangeError(f"the Grid strategy supports only categorical ranges; {', '.join(others)} "
                             "are not (make them CategoricalParameter values, or use Random)")
        combos = [dict(zip([r.name for r in space], values, strict=True))
                  for values in itertools.product(*(r.values for r in space))]
        if max_jobs is not None and max_jobs != len(combos):
            raise RangeError(f"MaxNumberOfTrainingJobs {max_jobs} must equal the number of grid combinations "
                             f"({len(combos)}) for the Grid strategy, or be left out")
        return combos
    if not max_jobs or max_jobs < 1:
        raise RangeError(f"MaxNumberOfTrainingJobs must be at least 1 for the {strategy} strategy")
    rng = random.Random(seed)
    size = _size(space)
    out: list[dict[str, str]] = []
    for _ in range(max_jobs):
        pick = {r.name: r.draw(rng) for r in space}
        for _retry in range(20):  # avoid repeating a combination while untried ones remain
            if pick not in out or len(out) >= size:
                break
            pick = {r.name: r.draw(rng) for r in space}
        out.append(pick)
    return out


class Searcher:
    """The values of each training job of one tuning job, asked for when the job starts; a model-based
    searcher learns from each finished job's objective value (``tell``)."""

    #: how many jobs the tuning job runs (at most)
    total: int

    def next(self, index: int) -> dict[str, str]:
        raise NotImplementedError

    def tell(self, index: int, value: float | None) -> None:
        """Job ``index`` finished with this objective value (``None``: failed, or no value)."""


class Planned(Searcher):
    """Random and Grid (and Hyperband, as Random): every job's values known before the first starts."""

    def __init__(self, jobs: list[dict[str, str]]) -> None:
        self.jobs = jobs
        self.total = len(jobs)

    def next(self, index: int) -> dict[str, str]:
        return self.jobs[index]


class Bayesian(Searcher):
    """Optuna's TPE sampler over the ranges, one trial per training job (``ask`` when the job starts,
    ``tell`` when it ends; a failed job is a failed trial). Scaling: ``Logarithmic`` searches in log
    space; ``ReverseLogarithmic`` searches ``log(1 - x)``, so values crowd towards 1 as SageMaker's do.
    The first jobs (a third, from 2 to 10) are random draws, as TPE needs some results to model."""

    def __init__(self, space: list[Range], max_jobs: int, seed: int, direction: str) -> None:
        import optuna  # only a Bayesian tuning step pays for the import

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.space, self.total = space, max_jobs
        sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(2, min(10, max_jobs // 3)))
        self.study = optuna.create_study(direction="minimize" if direction == "Minimize" else "maximize",
                                         sampler=sampler)
        d = optuna.distributions
        self.dists: dict[str, Any] = {}
        for r in space:
            if r.kind == "Categorical":
                self.dists[r.name] = d.CategoricalDistribution(list(r.values))
            elif r.scaling == "ReverseLogarithmic":
                self.dists[r.name] = d.FloatDistribution(math.log(1 - r.high), math.log(1 - r.low))
            elif r.kind == "Integer":
                self.dists[r.name] = d.IntDistribution(int(r.low), int(r.high), log=r.scaling == "Logarithmic")
            else:
                self.dists[r.name] = d.FloatDistribution(r.low, r.high, log=r.scaling == "Logarithmic")
        self.trials: dict[int, Any] = {}

    def next(self, index: int) -> dict[str, str]:
        trial = self.study.ask(self.dists)
        self.trials[index] = trial
        out: dict[str, str] = {}
        for r in self.space:
            v = trial.params[r.name]
            if r.kind == "Categorical":
                out[r.name] = str(v)
            elif r.scaling == "ReverseLogarithmic":
                out[r.name] = repr(min(r.high, max(r.low, 1 - math.exp(v))))
            elif r.kind == "Integer":
                out[r.name] = str(int(v))
            else:
                out[r.name] = repr(float(v))
        return out

    def tell(self, index: int, value: float | None) -> None:
        import optuna

        trial = self.trials.pop(index, None)
        if trial is None:
            return
        if value is None or math.isnan(value):
            self.study.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            self.study.tell(trial, value)


def searcher(strategy: str, space: list[Range], max_jobs: int | None, seed: int, direction: str) -> Searcher:
    """The searcher of a tuning job's strategy (checked as :func:`candidates` checks it)."""
    if strategy == "Bayesian":
        if not max_jobs or max_jobs < 1:
            raise RangeError("MaxNumberOfTrainingJobs must be at least 1 for the Bayesian strategy")
        return Bayesian(space, max_jobs, seed, direction)
    return Planned(candidates("Random" if strategy == "Hyperband" else strategy, space, max_jobs, seed))


def _size(space: list[Range]) -> float:
    """How many distinct combinations the space has (infinite with a continuous range)."""
    total = 1.0
    for r in space:
        total *= (len(r.values) if r.kind == "Categorical" else int(r.high) - int(r.low) + 1
                  if r.kind == "Integer" else math.inf)
    return total
