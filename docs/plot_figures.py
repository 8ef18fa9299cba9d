"""Draw the README's figure from the service's own answers: ``make figures``.

σ(x), σ'(x) and σ''(x) come from ``POST /v1/sigmoid``; the binary cross-entropy
and its gradient, against a probability p and against a logit z, for the
targets t = 0 and t = 1, from ``POST /v1/losses/binary-cross-entropy`` with
``reduction: "none"`` (so each gradient is that of its own element's loss).  The
app is called in this process through httpx's ASGI transport, with no server.

matplotlib is only needed here (the ``docs`` extra), never by the service.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np

from service.app import create_app
from service.settings import Settings

OUTPUT = Path(__file__).resolve().with_name("sigmoid-and-bce.png")

# Wide enough to show both tails of σ; p stays 0.01 away from 0 and 1, where
# the gradient's 1/p and 1/(1 − p) would dwarf everything else.
X = np.linspace(-8.0, 8.0, 321)
P = np.linspace(0.01, 0.99, 393)
TARGETS = (0.0, 1.0)


@dataclass(frozen=True)
class Curves:
    """Everything the figure plots, as the service returned it."""

    x: np.ndarray
    sigmoid: np.ndarray
    first_derivative: np.ndarray
    second_derivative: np.ndarray
    p: np.ndarray
    loss_of_p: dict[float, np.ndarray]
    gradient_of_p: dict[float, np.ndarray]
    z: np.ndarray
    loss_of_z: dict[float, np.ndarray]
    gradient_of_z: dict[float, np.ndarray]


async def _post(client: httpx.AsyncClient, path: str, body: dict[str, object]) -> dict:
    response = await client.post(path, json=body)
    response.raise_for_status()
    result: dict = response.json()
    return result


async def _bce(
    client: httpx.AsyncClient, field: str, inputs: np.ndarray, target: float
) -> tuple[np.ndarray, np.ndarray]:
    result = await _post(
        client,
        "/v1/losses/binary-cross-entropy",
        {
            field: inputs.tolist(),
            "targets": [target] * len(inputs),
            "reduction": "none",
        },
    )
    return np.array(result["losses"]), np.array(result["gradient"])


async def collect(client: httpx.AsyncClient) -> Curves:
    """Ask the service for every curve of the figure."""
    family = await _post(client, "/v1/sigmoid", {"x": X.tolist(), "order": 2})
    loss_of_p, gradient_of_p, loss_of_z, gradient_of_z = {}, {}, {}, {}
    for t in TARGETS:
        loss_of_p[t], gradient_of_p[t] = await _bce(client, "probabilities", P, t)
        loss_of_z[t], gradient_of_z[t] = await _bce(client, "logits", X, t)
    return Curves(
        x=X,
        sigmoid=np.array(family["value"]),
        first_derivative=np.array(family["derivative"]),
        second_derivative=np.array(family["second_derivative"]),
        p=P,
        loss_of_p=loss_of_p,
        gradient_of_p=gradient_of_p,
        z=X,
        loss_of_z=loss_of_z,
        gradient_of_z=gradient_of_z,
    )


async def collect_in_process() -> Curves:
    """:func:`collect` against an app built in this process."""
    transport = httpx.ASGITransport(app=create_app(Settings()))
    async with httpx.AsyncClient(
        transport=transport, base_url="http://lossgrad.local"
    ) as client:
        return await collect(client)


def render(curves: Curves, path: Path) -> None:
    """Draw the five panels into a PNG at ``path``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure = plt.figure(figsize=(11, 10), layout="constrained")
    grid = figure.add_gridspec(3, 2)
    colours = {0.0: "tab:blue", 1.0: "tab:red"}

    top = figure.add_subplot(grid[0, :])
    top.plot(curves.x, curves.sigmoid, label="σ(x)")
    top.plot(curves.x, curves.first_derivative, label="σ'(x) = σ(1 − σ)")
    top.plot(curves.x, curves.second_derivative, label="σ''(x) = σ'(1 − 2σ)")
    top.axhline(0.0, color="0.6", linewidth=0.8)
    top.set(title="Sigmoid and its derivatives", xlabel="x")
    top.legend(loc="upper left")

    panels = [
        (grid[1, 0], curves.p, curves.loss_of_p, "loss against p", "p", "L"),
        (
            grid[2, 0],
            curves.p,
            curves.gradient_of_p,
            "gradient against p",
            "p",
            "dL/dp",
        ),
        (grid[1, 1], curves.z, curves.loss_of_z, "loss against z", "z", "L"),
        (
            grid[2, 1],
            curves.z,
            curves.gradient_of_z,
            "gradient against z",
            "z",
            "dL/dz",
        ),
    ]
    for cell, inputs, by_target, title, xlabel, ylabel in panels:
        axes = figure.add_subplot(cell)
        for t, values in by_target.items():
            axes.plot(inputs, values, color=colours[t], label=f"t = {t:g}")
        axes.axhline(0.0, color="0.6", linewidth=0.8)
        if ylabel == "dL/dp":
            # −1/p and 1/(1 − p) span two decades near the edges.
            axes.set_yscale("symlog", linthresh=1.0)
        axes.set(title=f"Binary cross-entropy: {title}", xlabel=xlabel, ylabel=ylabel)
        axes.legend()

    figure.savefig(path, dpi=90, metadata={"Software": None})
    plt.close(figure)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python docs/plot_figures.py [PATH]``."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("path", nargs="?", type=Path, default=OUTPUT)
    args = parser.parse_args(argv)
    render(asyncio.run(collect_in_process()), args.path)
    print(f"wrote {args.path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
