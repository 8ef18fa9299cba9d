"""End-to-end benchmarks of the running service, each a ratio measured in one run.

- server time / F(N): the service's own time for a request (its
  ``Server-Timing`` header) over the codec floor F(N) = ``orjson.loads`` of the
  request body + ``orjson.dumps`` of the response arrays from numpy, timed in
  this process in the same run; the straightforward FastAPI endpoint of
  :mod:`bench.apps` is measured the same way;
- throughput at N = 64 over 16 keep-alive connections, lossgrad against a
  FastAPI endpoint that returns a constant (a plain ``def``, the target's
  reference) and against an ``async def`` one (the framework's ceiling);
- the server's peak RSS increase for one N = 1e6 request over the request and
  response bytes;
- throughput with two workers over one, with the load generator's CPU share
  and how the work spread over the workers.
"""

from __future__ import annotations

import statistics

import httpx
import numpy as np
import orjson

from bench._stats import Row, best_time
from bench.harness import (
    Server,
    cpu_seconds,
    lossgrad_command,
    reset_peak_rss,
    rss_bytes,
    serve,
    uvicorn_command,
)
from bench.load import run_load
from service.core import binary_cross_entropy_with_logits, cross_entropy_with_logits

BCE_PATH = "/v1/losses/binary-cross-entropy"
CE_PATH = "/v1/losses/cross-entropy"
HEALTH = "/health/live"


def bce_body(n: int, rng: np.random.Generator) -> bytes:
    """A BCE-on-logits request with ``reduction: none`` for ``n`` elements."""
    logits = rng.normal(scale=3.0, size=n)
    targets = (rng.random(n) < 0.5).astype(np.float64)
    return orjson.dumps(
        {"logits": logits, "targets": targets, "reduction": "none"},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def ce_body(rows: int, classes: int, rng: np.random.Generator) -> bytes:
    """A cross-entropy-on-logits request with class-index labels."""
    logits = rng.normal(scale=3.0, size=(rows, classes))
    labels = rng.integers(0, classes, size=rows)
    return orjson.dumps(
        {"logits": logits, "labels": labels, "reduction": "none"},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )


def codec_floor(body: bytes, response_arrays: dict[str, object]) -> float:
    """F: seconds to parse ``body`` plus to encode the response arrays."""
    parse = best_time(lambda: orjson.loads(body))
    encode = best_time(
        lambda: orjson.dumps(response_arrays, option=orjson.OPT_SERIALIZE_NUMPY)
    )
    return parse + encode


def timing(header: str, metric: str) -> float:
    """Seconds of ``metric`` in a ``Server-Timing`` header (``name;dur=ms, ...``)."""
    for entry in header.split(","):
        name, _, rest = entry.strip().partition(";")
        if name == metric:
            return float(rest.split("dur=")[1].split(";")[0]) / 1000
    raise KeyError(f"{metric} not in Server-Timing: {header}")


def server_seconds(
    client: httpx.Client, path: str, body: bytes, times: int, metric: str
) -> float:
    """Shortest ``Server-Timing`` duration of ``metric`` over ``times`` requests.

    The shortest, as F is its sides' fastest batches: both then stand for the
    work itself rather than for what else the machine was doing.
    """
    durations = []
    for _ in range(times):
        response = client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
        response.raise_for_status()
        durations.append(timing(response.headers["server-timing"], metric))
    return min(durations)


def _response_arrays(body: bytes, path: str) -> dict[str, object]:
    """The arrays the service sends back for ``body`` (computed by the core)."""
    request = orjson.loads(body)
    if path == BCE_PATH:
        result = binary_cross_entropy_with_logits(
            np.asarray(request["logits"]),
            np.asarray(request["targets"]),
            reduction="none",
        )
    else:
        result = cross_entropy_with_logits(
            np.asarray(request["logits"]),
            labels=np.asarray(request["labels"]),
            reduction="none",
        )
    return {
        "loss": result.loss,
        "losses": result.losses,
        "gradient": result.gradient,
        "hessian": None,
        "clamped": result.clamped,
    }


def codec_ratios(
    server: Server, path: str, body: bytes, repeats: int, times: int, metric: str
) -> list[float]:
    """``repeats`` samples of server time (``metric``) / F for one request body."""
    arrays = _response_arrays(body, path)
    ratios = []
    with httpx.Client(base_url=server.url, timeout=120) as client:
        server_seconds(client, path, body, 1, metric)  # warm-up
        for _ in range(repeats):
            floor = codec_floor(body, arrays)
            seconds = server_seconds(client, path, body, times, metric)
            ratios.append(seconds / floor)
    return ratios


def codec_rows(repeats: int, rng: np.random.Generator) -> list[Row]:
    """Server time / F for lossgrad and for the straightforward endpoint.

    lossgrad's server time is its ``process`` phase: from the whole body
    received to the response ready (parse, validate, compute, encode).  Its
    ``app`` phase adds the time spent receiving the body from the client, which
    the client's upload speed sets; it is printed alongside.  The
    straightforward endpoint can only be timed whole (``app``), and its
    body arrives as fast as lossgrad's, so its ratio slightly flatters it.
    """
    cases = [
        ("BCE logits none, N=1e5", BCE_PATH, bce_body(100_000, rng), "<= 1.5", 5),
        ("BCE logits none, N=1e6", BCE_PATH, bce_body(1_000_000, rng), "<= 1.4", 3),
        (
            "CE logits labels, 1e4 rows, C=10",
            CE_PATH,
            ce_body(10_000, 10, rng),
            "<= 1.6",
            5,
        ),
    ]
    rows = []
    with serve(lossgrad_command(), health=HEALTH) as lossgrad:
        for name, path, body, target, times in cases:
            ratios = codec_ratios(lossgrad, path, body, repeats, times, "process")
            rows.append(Row(f"server time / F: {name}", ratios, target))
            ratios = codec_ratios(lossgrad, path, body, repeats, times, "app")
            rows.append(
                Row(f"... including receiving the body: {name}", ratios, "report")
            )
    command = uvicorn_command("bench.apps:straightforward_app")
    with serve(command, health=HEALTH) as plain:
        for name, path, body, _target, _times in cases:
            ratios = codec_ratios(plain, path, body, max(1, repeats // 2), 1, "app")
            rows.append(
                Row(
                    f"server time / F: straightforward FastAPI, {name}",
                    ratios,
                    "report",
                )
            )
    return rows


def throughput_rows(
    repeats: int, rng: np.random.Generator, seconds: float
) -> list[Row]:
    """lossgrad / constant endpoints at N = 64, and two workers / one.

    The three servers run side by side and are loaded in turn, in windows of a
    second; each sample compares their best windows, so that a spell of load
    from elsewhere on the machine does not fall on one side only.
    """
    body = bce_body(64, rng)
    load = dict(connections=16, max_requests=200_000, max_seconds=seconds)
    window = {**load, "max_seconds": 1.0}
    windows = max(2, round(seconds))

    ratios, ceiling_ratios = [], []
    commands = {
        "lossgrad": lossgrad_command(),
        "constant": uvicorn_command("bench.apps:constant_app"),
        "ceiling": uvicorn_command("bench.apps:async_constant_app"),
    }
    best: dict[str, float] = {}
    for _ in range(repeats):
        with (
            serve(commands["lossgrad"], health=HEALTH) as ours,
            serve(commands["constant"], health=HEALTH) as constant,
            serve(commands["ceiling"], health=HEALTH) as ceiling,
        ):
            servers = {"lossgrad": ours, "constant": constant, "ceiling": ceiling}
            for server in servers.values():
                run_load(server.url, BCE_PATH, body, **window)  # warm-up
            best = dict.fromkeys(servers, 0.0)
            for _ in range(windows):
                for name, server in servers.items():
                    result = run_load(server.url, BCE_PATH, body, **window)
                    best[name] = max(best[name], result.throughput)
        ratios.append(best["lossgrad"] / best["constant"])
        ceiling_ratios.append(best["lossgrad"] / best["ceiling"])
    rows = [
        Row(
            "throughput N=64, 16 connections, 1 worker: lossgrad / constant endpoint "
            f"({best['lossgrad']:.0f} vs {best['constant']:.0f} req/s)",
            ratios,
            ">= 0.7",
        ),
        Row(
            "... lossgrad / async constant endpoint, no thread hop "
            f"({best['lossgrad']:.0f} vs {best['ceiling']:.0f} req/s)",
            ceiling_ratios,
            "report",
        ),
    ]

    for churn in (0, 50):
        scaling, shares, spreads = [], [], []
        for _ in range(repeats):
            with serve(lossgrad_command(1), health=HEALTH) as server:
                run_load(server.url, BCE_PATH, body, **{**load, "max_seconds": 1.0})
                one = run_load(server.url, BCE_PATH, body, churn=churn, **load)
            with serve(lossgrad_command(2), health=HEALTH) as server:
                run_load(server.url, BCE_PATH, body, **{**load, "max_seconds": 1.0})
                pids = server.worker_pids()
                before = [cpu_seconds(pid) for pid in pids]
                two = run_load(server.url, BCE_PATH, body, churn=churn, **load)
                used = [
                    cpu_seconds(pid) - b for pid, b in zip(pids, before, strict=True)
                ]
            scaling.append(two.throughput / one.throughput)
            shares.append(two.cpu_share)
            spreads.append(max(used) / sum(used) if sum(used) else 1.0)
        mode = "keep-alive" if not churn else f"reconnect every {churn} requests"
        rows.append(
            Row(
                f"throughput 2 workers / 1 worker, {mode} (load generator used "
                f"{statistics.median(shares):.2f} cores; busiest worker did "
                f"{statistics.median(spreads):.0%} of the work)",
                scaling,
                "report",
            )
        )
    return rows


def memory_rows(repeats: int, rng: np.random.Generator) -> list[Row]:
    """Peak RSS increase for one N = 1e6 request / (request + response bytes)."""
    body = bce_body(1_000_000, rng)
    small = bce_body(64, rng)
    rows = []
    for label, command, target in (
        ("lossgrad", lossgrad_command(), "<= 2.5"),
        (
            "straightforward FastAPI",
            uvicorn_command("bench.apps:straightforward_app"),
            "report",
        ),
    ):
        ratios = []
        for _ in range(repeats):
            with (
                serve(command, health=HEALTH) as server,
                httpx.Client(base_url=server.url, timeout=120) as client,
            ):
                client.post(
                    BCE_PATH,
                    content=small,
                    headers={"content-type": "application/json"},
                )
                pid = server.worker_pids()[0]
                if not reset_peak_rss(pid):
                    return []
                baseline = rss_bytes(pid)
                response = client.post(
                    BCE_PATH, content=body, headers={"content-type": "application/json"}
                )
                response.raise_for_status()
                peak = rss_bytes(pid, "VmHWM")
                ratios.append((peak - baseline) / (len(body) + len(response.content)))
        rows.append(
            Row(
                f"peak RSS increase / (request + response bytes), N=1e6: {label}",
                ratios,
                target,
            )
        )
    return rows
