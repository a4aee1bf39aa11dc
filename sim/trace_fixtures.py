"""Small synthetic traces in the exact formats of the public LLM traces.

The public traces cannot be downloaded here, so the project generates look-alikes
with realistic shapes (bursty arrivals, heavy-tailed lognormal token counts,
a few failed BurstGPT requests, shared Mooncake prefixes) for its tests,
examples and benchmarks.  ``python -m sim.trace_fixtures DIR [ROWS]`` writes
one file per format into ``DIR``; :func:`write_fixture` writes one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

FIXTURES = {
    "azure_conv_2023.csv": "azure_llm",
    "azure_code_2024.csv": "azure_llm_2024",
    "azure_multimodal_2025.csv": "azure_multimodal",
    "burstgpt.csv": "burstgpt",
    "mooncake.jsonl": "mooncake",
    "tasks.csv": "csv",
}
KINDS = tuple(dict.fromkeys(FIXTURES.values()))


def _arrivals_s(rng: np.random.Generator, rows: int, rate_per_s: float) -> np.ndarray:
    """Bursty arrivals: exponential gaps whose rate switches between a calm and a busy level."""
    busy = rng.random(rows) < 0.25
    gaps = rng.exponential(1.0 / rate_per_s, rows) * np.where(busy, 0.25, 1.3)
    return np.cumsum(gaps)


def _tokens(rng: np.random.Generator, rows: int, median: float, sigma: float, high: int) -> np.ndarray:
    return np.clip(np.round(rng.lognormal(np.log(median), sigma, rows)), 1, high).astype(np.int64)


def fixture_frame(
    kind: str, rows: int = 300, seed: int = 0, rate_per_s: float = 5.0
) -> pd.DataFrame | list[dict]:
    """The rows of one fixture: a frame for the CSV formats, dicts for Mooncake's JSON lines."""
    rng = np.random.default_rng(seed)
    t = _arrivals_s(rng, rows, rate_per_s)
    if kind.startswith("azure"):
        code = kind == "azure_llm_2024"
        ctx = _tokens(rng, rows, 1500 if code else 1000, 1.0, 32_000)
        gen = _tokens(rng, rows, 20 if code else 200, 0.9, 4096)
        start = pd.Timestamp(
            {"azure_llm": "2023-11-16 18:15:46", "azure_llm_2024": "2024-05-10 00:00:00"}.get(
                kind, "2025-03-04 09:00:00"
            )
        )
        stamps = start + pd.to_timedelta(np.round(t * 1e6), unit="us")
        if code:
            text = [s.strftime("%Y-%m-%d %H:%M:%S.%f") + "+00:00" for s in stamps]
        else:  # the 2023 files carry seven fractional digits
            text = [s.strftime("%Y-%m-%d %H:%M:%S.%f") + "0" for s in stamps]
        frame = pd.DataFrame({"TIMESTAMP": text, "ContextTokens": ctx, "GeneratedTokens": gen})
        if kind == "azure_multimodal":
            frame["NumImages"] = rng.choice([0, 1, 1, 2, 3], size=rows)
        return frame
    if kind == "burstgpt":
        req = _tokens(rng, rows, 400, 1.0, 16_000)
        resp = _tokens(rng, rows, 250, 0.9, 4096)
        resp[rng.random(rows) < 0.04] = 0  # failed requests
        return pd.DataFrame(
            {
                "Timestamp": np.floor(t * 10 + 50) / 10,
                "Model": rng.choice(["ChatGPT", "GPT-4"], size=rows, p=[0.8, 0.2]),
                "Request tokens": req,
                "Response tokens": resp,
                "Total tokens": req + resp,
                "Log Type": rng.choice(["Conversation log", "API log"], size=rows, p=[0.7, 0.3]),
            }
        )
    if kind == "mooncake":
        inp = _tokens(rng, rows, 7000, 0.6, 128_000)
        out = _tokens(rng, rows, 300, 0.8, 4096)
        prefixes = [list(range(k * 1000, k * 1000 + 8)) for k in range(12)]  # shared system prompts
        lines, next_id = [], 100_000
        for ms, i, o in zip(np.round(t * 1000).astype(np.int64), inp, out):
            blocks = int(np.ceil(i / 512))
            shared = prefixes[int(rng.integers(len(prefixes)))][: min(blocks, 8)]
            own = list(range(next_id, next_id + blocks - len(shared)))
            next_id += len(own)
            lines.append(
                {
                    "timestamp": int(ms),
                    "input_length": int(i),
                    "output_length": int(o),
                    "hash_ids": shared + own,
                }
            )
        return lines
    if kind == "csv":
        return pd.DataFrame(
            {
                "arrival_ms": np.round(t * 1000, 3),
                "model": rng.choice(["chat", "big"], size=rows, p=[0.75, 0.25]),
                "input_tokens": _tokens(rng, rows, 800, 1.0, 16_000),
                "output_tokens": _tokens(rng, rows, 120, 1.0, 4096),
            }
        )
    raise ValueError(f"unknown fixture kind {kind!r}; known: {', '.join(KINDS)}")


def write_fixture(
    kind: str, path: str | Path, rows: int = 300, seed: int = 0, rate_per_s: float = 5.0
) -> Path:
    """Write one fixture file in ``kind``'s exact format."""
    p = Path(path)
    data = fixture_frame(kind, rows, seed, rate_per_s)
    if isinstance(data, list):
        p.write_text("".join(json.dumps(row) + "\n" for row in data))
    else:
        data.to_csv(p, index=False)
    return p


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args:
        print("usage: python -m sim.trace_fixtures DIR [ROWS]", file=sys.stderr)
        return 2
    out = Path(args[0])
    out.mkdir(parents=True, exist_ok=True)
    rows = int(args[1]) if len(args) > 1 else 300
    for seed, (name, kind) in enumerate(FIXTURES.items()):
        print(write_fixture(kind, out / name, rows, seed=seed))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
