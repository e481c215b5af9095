"""Tuning steps run locally (issue 18.4): the search space (unit), and real tuning jobs on the echo image.

The echo image prints ``#metric score=`` (and ``loss=``) as a weighted sum of hyperparameters
(``score_of``), so the best job is known in advance; with ``ECHO_DECLARED`` it rejects undeclared
hyperparameters with the runtimes' contract line, which the pre-run declaration probe reads.
"""

from __future__ import annotations

import json
import math
import statistics
import tarfile
from pathlib import Path
from typing import Any

import pytest

from rosetta_orchestrator import Pipeline
from rosetta_orchestrator.local import search
from rosetta_orchestrator.local.declarations import RESERVED, declaration
from rosetta_orchestrator.local.plan import build_plan
from rosetta_orchestrator.local.precheck import PrecheckFailed
from rosetta_orchestrator.local.run import execute
from rosetta_orchestrator.local.runner import QuietReporter, RunResult
from rosetta_orchestrator.local.store import LocalStore

IMAGE = "rosetta-test/echo:latest"


# -- the search space (no Docker) ---------------------------------------------------------------------

def _config(**ranges: list[dict[str, Any]]) -> dict[str, Any]:
    return {"ParameterRanges": {f"{k}ParameterRanges": v for k, v in ranges.items()}}


def test_scaling_types_shape_the_draws() -> None:
    space = search.ranges(_config(
        Integer=[{"Name": "n", "MinValue": "1", "MaxValue": "1000", "ScalingType": "Logarithmic"},
                 {"Name": "m", "MinValue": "1", "MaxValue": "1000", "ScalingType": "Linear"}],
        Continuous=[{"Name": "r", "MinValue": "0.5", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"},
                    {"Name": "x", "MinValue": "0.001", "MaxValue": "1", "ScalingType": "Logarithmic"},
                    {"Name": "a", "MinValue": "2", "MaxValue": "4", "ScalingType": "Auto"}],
        Categorical=[{"Name": "c", "Values": ["p", "q"]}]))
    jobs = search.candidates("Random", space, 400, seed=1)
    n = [int(j["n"]) for j in jobs]
    m = [int(j["m"]) for j in jobs]
    assert all(1 <= v <= 1000 for v in n + m) and all(j["n"] == str(int(j["n"])) for j in jobs)
    assert statistics.median(n) < 100 < statistics.median(m)  # log: spread over decades; linear: uniform
    r = [float(j["r"]) for j in jobs]
    assert all(0.5 <= v <= 0.999 for v in r)
    assert statistics.median(r) > 0.9  # reverse logarithmic: dense near 1
    x = [math.log10(float(j["x"])) for j in jobs]
    assert -3 <= min(x) and max(x) <= 0 and abs(statistics.median(x) + 1.5) < 0.4
    assert all(2 <= float(j["a"]) <= 4 for j in jobs) and {j["c"] for j in jobs} == {"p", "q"}
    assert search.candidates("Random", space, 5, seed=7) == search.candidates("Random", space, 5, seed=7)


@pytest.mark.parametrize(("kind", "scaling", "low", "high", "middle"), [
    # middle: where the median draw must fall (within 15% of the range) for that scaling; the integer
    # log range is wide so that avoiding repeats (few small integers) does not move the median
    ("Integer", "Linear", 1, 1000, 500), ("Integer", "Auto", 1, 1000, 500),
    ("Integer", "Logarithmic", 1, 1_000_000, 1000),
    ("Continuous", "Linear", 0.001, 1, 0.5), ("Continuous", "Auto", 0.001, 1, 0.5),
    ("Continuous", "Logarithmic", 0.001, 1, 0.032), ("Continuous", "ReverseLogarithmic", 0.0, 0.999, 0.968),
])
def test_every_range_type_with_every_scaling_it_allows(kind: str, scaling: str, low: float, high: float,
                                                        middle: float) -> None:
    """Each (range type, ScalingType) SageMaker accepts: draws stay in bounds, integers are integers, and
    the median sits where that scaling puts it (uniform, geometric mean, or its mirror near 1)."""
    space = search.ranges(_config(**{kind: [{"Name": "h", "MinValue": str(low), "MaxValue": str(high),
                                             "ScalingType": scaling}]}))
    values = [float(j["h"]) for j in search.candidates("Random", space, 300, seed=5)]
    assert all(low <= v <= high for v in values)
    if kind == "Integer":
        assert all(v.is_integer() for v in values)
    if scaling in ("Logarithmic", "ReverseLogarithmic"):
        def f(v: float) -> float:
            return math.log(v) if scaling == "Logarithmic" else -math.log(1 - v)
        span = f(high) - f(low)
        assert abs(f(statistics.median(values)) - f(middle)) < 0.15 * span
    else:
        assert abs(statistics.median(values) - middle) < 0.15 * (high - low)


def test_categorical_ranges_draw_every_value_evenly() -> None:
    space = search.ranges(_config(Categorical=[{"Name": "c", "Values": ["a", "b", "c", "d"]}]))
    drawn = [j["c"] for j in search.candidates("Random", space, 400, seed=2)]
    counts = {v: drawn.count(v) for v in "abcd"}
    assert all(60 <= n <= 140 for n in counts.values()), counts


def test_hyperband_draws_as_random_and_an_unknown_strategy_is_refused() -> None:
    space = search.ranges(_config(Integer=[{"Name": "k", "MinValue": "1", "MaxValue": "50"}]))
    random_jobs = search.candidates("Random", space, 5, seed=9)
    assert search.searcher("Hyperband", space, 5, 9, "Minimize").next(4) == random_jobs[4]
    with pytest.raises(search.RangeError, match="Strategy 'Annealing' is not one of Random, Grid, Bayesian"):
        search.candidates("Annealing", space, 5, seed=9)


def test_bayesian_learns_from_the_results_told() -> None:
    """Optuna's TPE, driven as the tuning job drives it (ask when a job starts, tell when it ends):
    after its random start it proposes values near the optimum of a known objective, far more often
    than the random strategy does, within every range's bounds and scaling."""
    space = search.ranges(_config(
        Continuous=[{"Name": "x", "MinValue": "0", "MaxValue": "1", "ScalingType": "Linear"},
                    {"Name": "m", "MinValue": "0.5", "MaxValue": "0.999", "ScalingType": "ReverseLogarithmic"}],
        Integer=[{"Name": "k", "MinValue": "1", "MaxValue": "1000", "ScalingType": "Logarithmic"}],
        Categorical=[{"Name": "c", "Values": ["a", "b", "c"]}]))

    def loss(hp: dict[str, str]) -> float:  # best at x = 0.7, k = 30, c = b (m does not matter)
        return (float(hp["x"]) - 0.7) ** 2 + (math.log10(int(hp["k"])) - math.log10(30)) ** 2 + (hp["c"] != "b")

    def near(hp: dict[str, str]) -> bool:
        return abs(float(hp["x"]) - 0.7) < 0.15 and hp["c"] == "b"

    bayes = search.searcher("Bayesian", space, 40, 3, "Minimize")
    assert isinstance(bayes, search.Bayesian) and bayes.total == 40
    proposed = []
    for i in range(40):
        hp = bayes.next(i)
        assert 0 <= float(hp["x"]) <= 1 and 0.5 <= float(hp["m"]) <= 0.999 and 1 <= int(hp["k"]) <= 1000
        assert hp["k"] == str(int(hp["k"])) and hp["c"] in "abc"
        bayes.tell(i, None if i == 5 else loss(hp))  # a failed job is a failed trial, not a score
        proposed.append(hp)
    randomly = search.candidates("Random", space, 40, seed=3)
    late = sum(near(hp) for hp in proposed[20:])
    assert late >= 8 and late > 2 * sum(near(hp) for hp in randomly[20:]), late
    assert min(loss(hp) for hp in proposed) < 0.05
    maximizing = search.searcher("Bayesian", space, 3, 3, "Maximize")
    assert isinstance(maximizing, search.Bayesian) and maximizing.study.direction.name == "MAXIMIZE"


def test_random_avoids_repeats_and_grid_covers_every_combination() -> None:
    small = search.ranges(_config(Integer=[{"Name": "k", "MinValue": "1", "MaxValue": "4"}]))
    assert sorted(j["k"] for j in search.candidates("Random", small, 4, seed=3)) == ["1", "2", "3", "4"]
    grid = search.ranges(_config(Categorical=[{"Name": "a", "Values": ["1", "2"]},
                                              {"Name": "b", "Values": ["x", "y", "z"]}]))
    combos = search.candidates("Grid", grid, None, seed=0)
    assert len(combos) == 6 and {(c["a"], c["b"]) for c in combos} == {(a, b) for a in "12" for b in "xyz"}
    with pytest.raises(search.RangeError, match="must equal the number of grid combinations"):
        search.candidates("Grid", grid, 4, seed=0)
    with pytest.raises(search.RangeError, match="only categorical ranges; k are not"):
        search.candidates("Grid", small, None, seed=0)


@pytest.mark.parametrize(("ranges", "message"), [
    ({"Integer": [{"Name": "k", "MinValue": "5", "MaxValue": "2"}]}, "MinValue 5 is above MaxValue 2"),
    ({"Continuous": [{"Name": "lr", "MinValue": "0", "MaxValue": "1", "ScalingType": "Logarithmic"}]},
     "Logarithmic scaling needs values greater than 0"),
    ({"Integer": [{"Name": "k", "MinValue": "0", "MaxValue": "1", "ScalingType": "ReverseLogarithmic"}]},
     "ReverseLogarithmic scaling is only for continuous ranges"),
    ({"Integer": [{"Name": "k", "MinValue": "1.5", "MaxValue": "3"}]}, "MinValue '1.5' is not an integer"),
    ({"Categorical": [{"Name": "c", "Values": []}]}, "needs at least one value"),
])
def test_ranges_sagemaker_would_refuse(ranges: dict[str, Any], message: str) -> None:
    with pytest.raises(search.RangeError, match=message):
        search.ranges(_config(**ranges))


def test_tuning_definition_properties_and_get_top_model_uri() -> None:
    p = Pipeline("rosetta-tune-def", bucket="rosetta-test")
    tune = p.tuning("Tune", image=IMAGE, inputs={"train": "s3://rosetta-test/x/train.csv"},
                    ranges={"repeat": (1, 3), "lr": (0.01, 0.3, "Logarithmic"), "kind": ["a", "b"]},
                    objective="score", hyperparameters={"prefix": "p"}, max_jobs=3, max_parallel=2)
    p.model("Best", model_data=tune.best_model_data, trained_by=tune)
    definition = p.definition_dict()
    step = next(s for s in definition["Steps"] if s["Name"] == "Tune")
    config = step["Arguments"]["HyperParameterTuningJobConfig"]
    assert config["Strategy"] == "Random" and config["ResourceLimits"] == {"MaxParallelTrainingJobs": 2,
                                                                           "MaxNumberOfTrainingJobs": 3}
    assert config["ParameterRanges"]["IntegerParameterRanges"][0]["Name"] == "repeat"
    assert config["ParameterRanges"]["ContinuousParameterRanges"][0]["ScalingType"] == "Logarithmic"
    assert config["ParameterRanges"]["CategoricalParameterRanges"][0]["Values"] == ["a", "b"]
    job = step["Arguments"]["TrainingJobDefinition"]
    assert job["StaticHyperParameters"] == {"prefix": "p"}
    assert job["AlgorithmSpecification"]["MetricDefinitions"] == [{"Name": "score", "Regex": "#metric score=(\\S+)"}]
    model = next(s for s in definition["Steps"] if s["Name"] == "Best")
    url = model["Arguments"]["PrimaryContainer"]["ModelDataUrl"]["Std:Join"]["Values"]
    assert url == ["s3:/", "rosetta-test", "rosetta-tune-def/tuning/Tune",
                   {"Get": "Steps.Tune.TrainingJobSummaries[0].TrainingJobName"}, "output/model.tar.gz"]
    assert build_plan(definition).steps["Best"].deps == {"Tune"}


# -- real tuning jobs (echo image) --------------------------------------------------------------------

def run(p: Pipeline, tmp: Path, warnings: list[str] | None = None) -> tuple[RunResult, QuietReporter]:
    reporter = QuietReporter()
    result = execute(p, store=LocalStore(tmp / "s3"), workdir=tmp / "runs", reporter=reporter, max_parallel=2,
                     warn=(warnings.append if warnings is not None else None))
    return result, reporter


def _data(tmp: Path) -> Path:
    f = tmp / "train.csv"
    f.write_text("1,2\n3,4\n")
    return f


def _seen(result: RunResult, job: dict[str, Any]) -> dict[str, Any]:
    store = result.store
    assert isinstance(store, LocalStore)
    with tarfile.open(store.path(job["ModelArtifacts"]["S3ModelArtifacts"])) as tar:
        return dict(json.loads(tar.extractfile("hosts/algo-1.json").read()))  # type: ignore[union-attr]


@pytest.mark.docker
def test_random_tuning_feeds_a_model_and_transform(echo_image: str, tmp_path: Path) -> None:
    p = Pipeline("rosetta-tune-random", bucket="rosetta-test")
    weights = {"repeat": 1, "lr": 10, "kind": 100}
    tune = p.tuning("Tune", image=IMAGE, inputs={"train": p.upload(_data(tmp_path))},
                    ranges={"repeat": (1, 3), "lr": (0.01, 0.3, "Logarithmic"), "kind": ["1", "2", "3"]},
                    objective="score", objective_type="Maximize", metrics=["rows"],
                    hyperparameters={"prefix": "best", "seen": "1", "score_of": json.dumps(weights)},
                    max_jobs=4, max_parallel=2, seed=11)
    model = p.model("BestModel", model_data=tune.best_model_data, trained_by=tune)
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "in.csv").write_text("x\ny\n")
    p.transform("Score", model=model, data=p.upload(batch))
    result, reporter = run(p, tmp_path)
    assert result.status == "Succeeded", {n: s.reason for n, s in result.steps.items()}
    props = result.steps["Tune"].properties
    jobs = props["RosettaTrainingJobs"]
    assert len(jobs) == 4 and all(j["TrainingJobStatus"] == "Completed" for j in jobs)
    expected = {}
    for j in jobs:
        hp = j["TunedHyperParameters"]
        assert set(hp) == {"repeat", "lr", "kind"}
        assert 1 <= int(hp["repeat"]) <= 3 and 0.01 <= float(hp["lr"]) <= 0.3 and hp["kind"] in ("1", "2", "3")
        expected[j["TrainingJobName"]] = sum(float(hp[k]) * w for k, w in weights.items())
        metrics = {m["MetricName"]: m["Value"] for m in j["FinalMetricDataList"]}
        assert metrics["score"] == pytest.approx(expected[j["TrainingJobName"]]) and metrics["rows"] == 2
        seen = _seen(result, j)["hyperparameters"]  # static values passed through, plus SageMaker's own key
        assert seen["prefix"] == "best" and seen[RESERVED] == "score" and seen["repeat"] == hp["repeat"]
    best = max(expected, key=lambda k: expected[k])
    assert props["BestTrainingJob"]["TrainingJobName"] == best
    summaries = props["TrainingJobSummaries"]
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] for s in summaries]
    assert values == sorted(values, reverse=True) and summaries[0]["TrainingJobName"] == best
    assert props["TrainingJobStatusCounters"]["Completed"] == 4 and props["ObjectiveStatusCounters"]["Succeeded"] == 4
    assert len(props["HyperParameterTuningJobName"]) <= 32
    # the Model step took the best job's model.tar.gz (get_top_model_s3_uri) and the transform served it
    container = result.steps["BestModel"].properties["PrimaryContainer"]
    assert container["ModelDataUrl"] == f"s3://rosetta-test/rosetta-tune-random/tuning/Tune/{best}/output/model.tar.gz"
    store = result.store
    assert isinstance(store, LocalStore)
    out = store.path(result.steps["Score"].properties["TransformOutput"]["S3OutputPath"])
    best_repeat = int(next(j for j in jobs if j["TrainingJobName"] == best)["TunedHyperParameters"]["repeat"])
    assert (out / "in.csv.out").read_text() == "".join(f"best:{v}\n" * best_repeat for v in "xy")
    assert any("2 at a time" in line for line in reporter.lines["Tune"])


@pytest.mark.docker
def test_grid_tuning_minimizes_over_every_combination(echo_image: str, tmp_path: Path) -> None:
    p = Pipeline("rosetta-tune-grid", bucket="rosetta-test")
    p.tuning("Grid", image=IMAGE, inputs={"train": p.upload(_data(tmp_path))},
             ranges={"a": ["1", "5"], "b": ["2", "0"]}, objective="loss", objective_type="Minimize",
             strategy="Grid", hyperparameters={"loss_of": json.dumps({"a": 1, "b": 3})}, max_parallel=2)
    result, _ = run(p, tmp_path)
    assert result.status == "Succeeded", {n: s.reason for n, s in result.steps.items()}
    props = result.steps["Grid"].properties
    tried = sorted((j["TunedHyperParameters"]["a"], j["TunedHyperParameters"]["b"])
                   for j in props["RosettaTrainingJobs"])
    assert tried == [("1", "0"), ("1", "2"), ("5", "0"), ("5", "2")]
    assert props["BestTrainingJob"]["TunedHyperParameters"] == {"a": "1", "b": "0"}
    assert props["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": "Minimize", "MetricName": "loss", "Value": 1.0}


@pytest.mark.docker
def test_bayesian_tuning_runs_its_jobs_through_optuna(echo_image: str, tmp_path: Path) -> None:
    p = Pipeline("rosetta-tune-bayes", bucket="rosetta-test")
    p.tuning("Tune", image=IMAGE, inputs={"train": p.upload(_data(tmp_path))}, strategy="Bayesian",
             ranges={"repeat": (1, 3), "lr": (0.5, 0.99, "ReverseLogarithmic")}, objective="score",
             hyperparameters={"score_of": json.dumps({"repeat": 1, "lr": 10})}, max_jobs=3, max_parallel=2, seed=4)
    result, reporter = run(p, tmp_path)
    assert result.status == "Succeeded", {n: s.reason for n, s in result.steps.items()}
    props = result.steps["Tune"].properties
    jobs = props["RosettaTrainingJobs"]
    assert len(jobs) == 3 and all(j["TrainingJobStatus"] == "Completed" for j in jobs)
    tuned = {j["TrainingJobName"]: j["TunedHyperParameters"] for j in jobs}
    scores = {name: int(hp["repeat"]) + 10 * float(hp["lr"]) for name, hp in tuned.items()}
    assert all(0.5 <= float(j["TunedHyperParameters"]["lr"]) <= 0.99 for j in jobs)
    assert props["BestTrainingJob"]["TrainingJobName"] == max(scores, key=lambda k: scores[k])
    assert any("Bayesian search through Optuna's TPE sampler" in line for line in reporter.lines["Tune"])


@pytest.mark.docker
def test_a_range_the_image_does_not_declare_fails_before_any_job(echo_image: str, tmp_path: Path) -> None:
    env = {"ECHO_DECLARED": "prefix,repeat"}
    found = declaration(IMAGE, env)
    assert found.names == ("prefix", "repeat") and found.rejects_reserved
    assert declaration(IMAGE).names is None  # without a declaration any name goes
    p = Pipeline("rosetta-tune-bad", bucket="rosetta-test")
    p.tuning("Tune", image=IMAGE, inputs={"train": p.upload(_data(tmp_path))}, env=env,
             ranges={"repeats": (1, 3)}, objective="rows", max_jobs=2)
    with pytest.raises(PrecheckFailed) as info:
        run(p, tmp_path)
    assert ("step Tune: the range 'repeats' names a hyperparameter that rosetta-test/echo:latest does not declare "
            "(declared: prefix, repeat)") in str(info.value)
    assert not (tmp_path / "runs").exists()  # nothing ran


@pytest.mark.docker
def test_an_image_rejecting_the_reserved_key_is_warned_and_fails_as_on_aws(echo_image: str, tmp_path: Path) -> None:
    env = {"ECHO_DECLARED": "prefix,repeat,seen"}
    p = Pipeline("rosetta-tune-reserved", bucket="rosetta-test")
    p.tuning("Tune", image=IMAGE, inputs={"train": p.upload(_data(tmp_path))}, env=env,
             ranges={"repeat": [1, 2]}, objective="rows", strategy="Grid", hyperparameters={"seen": "1"})
    warnings: list[str] = []
    result, reporter = run(p, tmp_path, warnings)
    assert result.status == "Failed"
    assert any(RESERVED in w and "fails, on AWS as in this run" in w for w in warnings)
    step = result.steps["Tune"]
    assert RESERVED in step.reason, step.reason  # each job failed on the key, as it would on AWS
    assert not any("left out" in line for line in reporter.lines["Tune"])


@pytest.mark.docker
def test_no_job_reporting_the_objective_fails_the_step(echo_image: str, tmp_path: Path) -> None:
    p = Pipeline("rosetta-tune-none", bucket="rosetta-test")
    p.tuning("Tune", image=IMAGE, inputs={"train": p.upload(_data(tmp_path))}, ranges={"repeat": ["1", "x"]},
             objective="score", strategy="Grid")
    result, _ = run(p, tmp_path)
    step = result.steps["Tune"]
    assert step.status == "Failed"
    assert step.reason.startswith("no training job of tuning job ")
    assert "reported the objective metric score" in step.reason
    assert "repeat: expected an integer, got 'x'" in step.reason  # the failed job's reason


@pytest.mark.docker
@pytest.mark.parametrize(("example", "declared"), [
    ("iris-python", ("min_samples_leaf", "n_estimators", "target")),
    ("iris-r", ("ntree", "seed", "target")),
    ("iris-julia", ("epochs", "l2", "lr", "target")),
])
def test_the_three_runtimes_declarations_are_read_from_their_images(example: str, declared: tuple[str, ...]) -> None:
    """The probe reads each runtime's typed declaration (dataclass, R list, Julia NamedTuple) from the
    example image, through the contract's undeclared-name failure (golden case hp-unknown-key)."""
    from sagemaker_rosetta import images

    found = declaration(images.tag(example))
    assert found.names is not None and tuple(sorted(found.names)) == declared, found
    assert not found.rejects_reserved, found  # the runtimes accept _tuning_objective_metric (golden case)
    assert found.undeclared(["ntrees", *declared, "sagemaker_program", RESERVED]) == ["ntrees"]
