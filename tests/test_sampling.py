"""Adaptive sampling to a precision target, and the A/A noise floor, on synthetic sample streams."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from slimlab import SweepSpec, sampling
from slimlab.errors import SpecError
from slimlab.model import SamplingRule
from slimlab.sweep import MEASURE_BURST, timed_rounds

RULE = SamplingRule(min_repeats=10, max_repeats=60, precision=0.025, budget_s=None)


def stream(center: float, spread: float, n: int, seed: int = 0) -> list[float]:
    """``n`` start-ups around ``center`` ms, lognormal with a relative ``spread`` (as start-ups are)."""
    return list(center * np.random.default_rng(seed).lognormal(0, spread, n))


def sample_until_done(rule: SamplingRule, source: list[float], stored: int = 0) -> int:
    """How many samples of ``source`` the rule takes, a burst at a time, starting from ``stored``."""
    taken = stored
    while more := sampling.next_burst(rule, source[:taken], MEASURE_BURST):
        taken += more
    return taken


@pytest.mark.unit
def test_a_stable_stream_stops_at_min_repeats():
    assert sample_until_done(RULE, stream(2.0, 0.01, 200)) == RULE.min_repeats
    assert sampling.relative_precision(stream(2.0, 0.01, 10)) < RULE.precision


@pytest.mark.unit
def test_a_noisy_stream_goes_on_and_max_repeats_caps_it():
    moderate = sample_until_done(RULE, stream(2.0, 0.08, 200, seed=1))
    assert RULE.min_repeats < moderate < RULE.max_repeats  # more than the minimum, and it got there
    assert sampling.relative_precision(stream(2.0, 0.08, 200, seed=1)[:moderate]) <= RULE.precision
    hard = stream(2.0, 0.1, 200, seed=0)
    hard_taken = sample_until_done(RULE, hard)
    assert hard_taken == RULE.max_repeats  # within reach by its projection, yet not there at 60: capped
    assert sampling.precision_columns(RULE, hard[:60])["precision_reached"] is False


@pytest.mark.unit
def test_a_target_far_out_of_reach_stops_at_twice_min_repeats():
    wild = stream(2.0, 0.6, 200, seed=2)  # a busy host: ±20% after 20 starts would need ~1,300
    assert sample_until_done(RULE, wild) == 2 * RULE.min_repeats  # starts in several rounds first
    assert sampling.precision_columns(RULE, wild[:20])["precision_reached"] is False


@pytest.mark.unit
def test_the_time_budget_ends_sampling_past_min_repeats_only():
    slow = stream(400.0, 0.1, 200, seed=0)  # container-like: 0.4 s a start, noisy
    budget = SamplingRule(10, 60, 0.025, budget_s=6.0)
    taken = sample_until_done(budget, slow)
    assert 10 < taken < 60 and sum(slow[:taken]) / 1000 >= 6.0 and sum(slow[:taken - 5]) / 1000 < 6.0
    assert sample_until_done(SamplingRule(10, 60, 0.025, budget_s=0.5), slow) == 10  # the minimum stands


@pytest.mark.unit
def test_a_resumed_variant_decides_from_its_stored_samples():
    noisy = stream(2.0, 0.08, 200, seed=1)
    fresh = sample_until_done(RULE, noisy)
    # Killed after 15 samples: resuming takes what the fresh run took, no more and no fewer.
    assert sample_until_done(RULE, noisy, stored=15) == fresh
    # A variant stored with enough samples takes none.
    assert sampling.next_burst(RULE, noisy[:fresh], MEASURE_BURST) == 0
    # repeats (a fixed count) is min = max: 20 stored ones are enough, 12 are not.
    fixed = SweepSpec.load({"workloads": ["hello"], "repeats": 20}).sampling()
    assert fixed.min_repeats == fixed.max_repeats == 20
    assert sampling.next_burst(fixed, noisy[:20], MEASURE_BURST) == 0
    assert sampling.next_burst(fixed, noisy[:12], MEASURE_BURST) == 5


@pytest.mark.unit
def test_a_guest_projects_the_starts_its_interval_needs():
    noisy = stream(80.0, 0.1, 400, seed=4)
    assert sampling.projected_starts(RULE, [], MEASURE_BURST) == RULE.min_repeats
    more = sampling.projected_starts(RULE, noisy[:10], MEASURE_BURST)
    assert more > 0 and more % MEASURE_BURST == 0 and 10 + more <= RULE.max_repeats
    assert sampling.projected_starts(RULE, stream(80.0, 0.005, 10), MEASURE_BURST) == 0


@dataclass
class _FakeRunner:
    """Pure scheduling: a runner that hands out a variant's next synthetic start-ups."""

    source: list[float]
    given: int = 0

    def samples(self, workload, binary, timeout_s, runs, warmup=0, cpu=None):
        out = self.source[self.given:self.given + runs]
        self.given += runs
        return [type("S", (), {"startup_ms": v})() for v in out]


@dataclass
class _Item:
    variant: object
    runner: _FakeRunner
    workload: object = None
    binary: object = None


@pytest.mark.unit
def test_timed_rounds_stop_each_variant_by_its_own_interval():
    spec = SweepSpec.load({"workloads": ["hello"], "warmup": 0})
    items = {name: _Item(type("V", (), {"key": name})(), _FakeRunner(stream(2.0, spread, 200, seed=n)))
             for n, (name, spread) in enumerate({"stable": 0.01, "noisy": 0.08, "wild": 0.6}.items())}
    got: dict[str, list[float]] = {name: [] for name in items}
    order, done = [], {}

    def keep(item, index, samples):
        assert index == len(got[item.variant.key])
        got[item.variant.key] += [s.startup_ms for s in samples]
        order.append(item.variant.key)

    timed_rounds(list(items.values()), spec, lambda item: len(got[item.variant.key]),
                 lambda item: sampling.next_burst(spec.sampling(), got[item.variant.key], MEASURE_BURST),
                 keep, lambda item, reason, status="": done.setdefault(item.variant.key, reason))
    assert done == {"stable": None, "noisy": None, "wild": None}
    # the wild one's interval puts the target far out of reach: it stops after four bursts
    assert len(got["stable"]) == spec.min_repeats and len(got["wild"]) == 2 * spec.min_repeats
    assert spec.min_repeats < len(got["noisy"]) < spec.max_repeats
    assert set(order[:6]) == set(items)  # interleaved: every variant had its bursts in the first rounds


@pytest.mark.unit
def test_the_noise_floor_splits_each_binary_in_alternate_bursts():
    first, second = sampling.aa_halves(list(range(20)), 5)
    assert first == [*range(5), *range(10, 15)] and second == [*range(5, 10), *range(15, 20)]
    quiet = {f"v{n}": stream(2.0, 0.03, 40, seed=n) for n in range(10)}
    floor = sampling.noise_floor(quiet, MEASURE_BURST)
    assert floor["pairs"] == 10 and floor["abs_change_median"] < 0.03 and floor["false_verdicts"] == 0
    # A binary whose odd bursts ran 30% slower (a host that got busy in turns) is caught as a false call.
    drifting = [v * (1.3 if (i // 5) % 2 else 1.0) for i, v in enumerate(stream(2.0, 0.02, 40, seed=11))]
    floor = sampling.noise_floor({**quiet, "drift": drifting}, MEASURE_BURST)
    assert floor["false_verdicts"] == 1 and floor["false_verdict_variants"] == ["drift"]
    assert floor["abs_change_p95"] > 0.1
    assert sampling.noise_floor({"short": [1.0, 2.0]}, MEASURE_BURST)["pairs"] == 0


@pytest.mark.unit
@pytest.mark.parametrize("spec, message", [
    ({"repeats": 20, "min_repeats": 5}, "repeats .*and min_repeats.* exclude each other"),
    ({"min_repeats": 40, "max_repeats": 20}, "min_repeats \\(40\\) must not exceed max_repeats"),
    ({"precision": 0}, "precision must be between"),
    ({"precison": 0.02}, "did you mean 'precision'"),
    ({"variant_budget_s": "long"}, "variant_budget_s must be a number"),
])
def test_bad_sampling_settings_are_errors_before_any_work(spec, message):
    with pytest.raises(SpecError, match=message):
        SweepSpec.load({"workloads": ["hello"], **spec})


@pytest.mark.unit
def test_image_repeats_fixes_container_counts_only():
    spec = SweepSpec.load({"workloads": ["hello"], "image_repeats": 5, "precision": 0.05})
    assert spec.sampling(container=True) == SamplingRule(5, 5, 0.05, None)
    assert spec.sampling() == SamplingRule(spec.min_repeats, spec.max_repeats, 0.05, spec.variant_budget_s)
    assert spec.to_dict()["precision"] == 0.05 and "repeats" not in spec.to_dict()
