"""benchmarks/perf_hostile.py and benchmarks/hostile_attacks.py without servers."""

from __future__ import annotations

import pickle

import pytest

from benchmarks import perf_hostile
from benchmarks.hostile_attacks import Outcome, attacker_sources, multipart
from benchmarks.perf_settings import HOSTILE_ATTACKS, parse

pytestmark = pytest.mark.unit


def test_summary_counts_successes_and_quantiles() -> None:
    outcomes = [Outcome(0, 0.01 * i, 200 if i % 2 else 503, True) for i in range(1, 101)]
    result = perf_hostile.summary(outcomes)
    assert result["requests"] == 100 and result["success_rate"] == 0.5
    assert result["p50_ms"] == 510.0 and result["p99_ms"] == 1000.0
    assert result["statuses"] == {"200": 50, "503": 50}
    assert perf_hostile.summary([])["success_rate"] is None
    assert perf_hostile.summary(outcomes, 200)["scheduled_success_rate"] == 0.25


def test_attackers_never_use_the_probes_address() -> None:
    sources = attacker_sources(300)
    assert len(set(sources)) == 300 and "127.0.0.1" not in sources
    assert all(s.startswith("127.") for s in sources)


def test_every_attack_can_be_sent_to_its_own_process() -> None:
    settings = parse(["hostile", "--hostile-seconds", "1", "--hostile-clients", "2"])
    chosen = perf_hostile.attacks(settings, multipart(b"x"))
    assert tuple(chosen) == HOSTILE_ATTACKS
    for attack in chosen.values():
        pickle.dumps(attack)


def test_overhead_is_the_quiet_p50_difference() -> None:
    quiet = {"front_door": {"probes": {"p50_ms": 12.5}}, "gunicorn": {"probes": {"p50_ms": 10.0}}}
    assert perf_hostile._overhead({"quiet": quiet}) == 2.5
    assert perf_hostile._overhead({}) is None
