"""Hostile mode: attacks on the web UI with and without the nginx front door, in one run.

    python -m benchmarks.perf hostile --hostile-seconds 15 --hostile-clients 200

One TorchServe and one gunicorn (config/gunicorn.conf.py) are started; an nginx front door
(stack/nginx.py) is put in front of that gunicorn. For each attack, first against gunicorn
directly (the baseline: what `make run` served before) and then through nginx, a normal client
from 127.0.0.1 POSTs a 28×28 PNG to /api/predict every 0.25 s and another GETs /api/health
every 0.5 s while the attack (benchmarks/hostile_attacks.py, in its own process, from 127.0.1.x)
runs, and for RECOVERY_S after it. Reported per attack and target: the probes' success rate,
p50/p99 latency, health's success rate and p99, what the attackers got, and the probes after the
attack ("recovery"). "quiet" is no attack: the front door's cost. "expensive-images" is 16
clients sending the costliest image the decode budget admits (a 3300×3300 RGB PNG of 30 KB).
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks.hostile_attacks import (
    Outcome,
    idle_connections,
    in_process,
    large_jpeg,
    multipart,
    repeat,
    request_once,
    slow_headers,
    upload_burst,
)
from benchmarks.perf_machine import finish, new_report
from benchmarks.perf_services import services, tuning_config
from benchmarks.perf_settings import Settings
from evalsets.bench_inputs import mnist_digit, mnist_png
from evalsets.hostile import big_png
from stack.launcher import door_settings
from stack.nginx import Nginx
from stack.ports import free_ports

SETTLE_S = 5.0  # pause after an attack, so the next one starts on a calm stack
PROBE_INTERVAL_S = 0.25
HEALTH_INTERVAL_S = 0.5
RECOVERY_S = 5.0  # seconds of probes after an attack: is the service back in full?
EXPENSIVE_CLIENTS = 16
EXPENSIVE_SIDE = 3300  # RGB PNG at the edge of the decode budget: the most CPU per upload

log = logging.getLogger("perf")


def quantile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) of `values` in ms, None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    return round(1000 * ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def summary(outcomes: Sequence[Outcome], scheduled: int | None = None) -> dict[str, Any]:
    """Success rate (200s), p50/p99 latency over all answers, and the statuses seen; with
    `scheduled` (the probes a client never held up would have sent) also the share of those
    that succeeded: a probe stuck 10 s sends no others meanwhile."""
    ok = [o for o in outcomes if o.status == 200]
    times = [o.seconds for o in outcomes]
    return {
        "requests": len(outcomes),
        "success_rate": round(len(ok) / len(outcomes), 3) if outcomes else None,
        "scheduled": scheduled,
        "scheduled_success_rate": round(len(ok) / scheduled, 3) if scheduled else None,
        "p50_ms": quantile(times, 0.5),
        "p99_ms": quantile(times, 0.99),
        "statuses": dict(Counter(str(o.status) for o in outcomes)),
    }


def quiet(url: str, seconds: float) -> None:
    """No attack: the stack's latency as is."""
    del url
    time.sleep(seconds)


def attacks(settings: Settings, photo: tuple[bytes, str]) -> dict[str, Callable[[str], Any]]:
    """Attack name → a picklable function of the target URL running it for --hostile-seconds."""
    seconds, clients = settings.hostile_seconds, settings.hostile_clients
    body, kind = photo
    return {
        "quiet": partial(quiet, seconds=seconds),
        "slow-headers": partial(slow_headers, sockets=clients, interval=2.0, seconds=seconds),
        "idle-connections": partial(idle_connections, sockets=int(1.5 * clients), seconds=seconds),
        "upload-burst": partial(
            upload_burst,
            clients=clients,
            body=body,
            content_type=kind,
            seconds=seconds,
            sources=20,
        ),
        "expensive-images": partial(
            upload_burst,
            clients=EXPENSIVE_CLIENTS,
            body=multipart(big_png(EXPENSIVE_SIDE, EXPENSIVE_SIDE, "RGB"))[0],
            content_type=multipart(b"")[1],
            seconds=seconds,
            sources=4,
        ),
    }


def attack_summary(result: Any) -> Any:
    """What the attackers got: statuses of an upload burst, or connections opened."""
    if isinstance(result, list):
        return {**summary(result), "waited_p99_ms": quantile([o.waited for o in result], 0.99)}
    return {} if result is None else {"connections_opened": result}


def measure(url: str, attack: Callable[[str], Any], seconds: float, png: bytes) -> dict[str, Any]:
    """Probe predictions and health at `url` while `attack(url)` runs in its own process."""
    body, kind = multipart(png)
    health: list[Outcome] = []

    def probe_health() -> None:
        health.extend(
            repeat(lambda: request_once(url, "/api/health", None, ""), HEALTH_INTERVAL_S, seconds)
        )

    with in_process(attack, url) as result:
        thread = threading.Thread(target=probe_health, daemon=True)
        thread.start()
        probes = repeat(
            lambda: request_once(url, "/api/predict", body, kind), PROBE_INTERVAL_S, seconds
        )
        thread.join(timeout=seconds + 30)
        attacked = result.result(timeout=seconds + 120)
    after = repeat(
        lambda: request_once(url, "/api/predict", body, kind), PROBE_INTERVAL_S, RECOVERY_S
    )
    return {
        "probes": summary(probes, round(seconds / PROBE_INTERVAL_S)),
        "health": summary(health, round(seconds / HEALTH_INTERVAL_S)),
        "attack": attack_summary(attacked),
        "recovery": summary(after, round(RECOVERY_S / PROBE_INTERVAL_S)),
    }


def stack_env(settings: Settings) -> dict[str, str]:
    """The GUNICORN_* settings of the run, for the front door's limits."""
    tuning = {
        "GUNICORN_WORKERS": settings.gunicorn_workers,
        "GUNICORN_THREADS": settings.gunicorn_threads,
    }
    return {key: str(value) for key, value in tuning.items() if value is not None}


def hostile(settings: Settings) -> dict[str, Any]:
    """Every attack against gunicorn directly, then through the front door; one report."""
    report = new_report("hostile", config=tuning_config(settings))
    report["config"].update(
        {"seconds": settings.hostile_seconds, "clients": settings.hostile_clients}
    )
    png = mnist_png(mnist_digit(settings.data_root, settings.index)[0])
    photo = multipart(large_jpeg(), "photo.jpg", "image/jpeg")
    chosen = {k: v for k, v in attacks(settings, photo).items() if k in settings.hostile_attacks}
    with services(settings) as (endpoints, stack):
        direct = endpoints.ui_url or ""
        prefix = Path(stack.work_dir if stack else ".") / "nginx"
        (port,) = free_ports(1)
        upstream = direct.removeprefix("http://")
        door = Nginx(f"127.0.0.1:{port}", upstream, prefix, door_settings(stack_env(settings)))
        with door:
            report["results"] = {}
            for name, attack in chosen.items():
                for target, url in (("gunicorn", direct), ("front_door", door.url)):
                    log.info("hostile: %s against %s (%s)", name, target, url)
                    outcome = measure(url, attack, settings.hostile_seconds, png)
                    report["results"].setdefault(name, {})[target] = outcome
                    log.info("  %s", _line(outcome))
                    time.sleep(SETTLE_S)
    report["front_door_overhead_ms"] = _overhead(report["results"])
    return finish(report)


def _line(outcome: dict[str, Any]) -> str:
    """One log line of a measurement."""
    probes, health = outcome["probes"], outcome["health"]
    return (
        f"probes {probes['scheduled_success_rate']} ok (of scheduled), "
        f"p50 {probes['p50_ms']} p99 {probes['p99_ms']} ms; "
        f"health {health['scheduled_success_rate']} ok, p99 {health['p99_ms']} ms; "
        f"after {outcome['recovery']['scheduled_success_rate']} ok; "
        f"attack {outcome['attack']}"
    )


def _overhead(results: dict[str, Any]) -> float | None:
    """p50 of a 28×28 PNG prediction through nginx minus directly, unattacked, in ms."""
    quiet = results.get("quiet")
    if not quiet:
        return None
    door, direct = quiet["front_door"]["probes"]["p50_ms"], quiet["gunicorn"]["probes"]["p50_ms"]
    return None if door is None or direct is None else round(door - direct, 1)
