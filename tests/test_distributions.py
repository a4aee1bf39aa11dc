"""Service-time distributions: moments, quantiles, sampling, validation."""

import math

import numpy as np
import pytest

from scheduler import (
    DISTRIBUTIONS,
    Deterministic,
    Empirical,
    Exponential,
    Gamma,
    LogNormal,
    SpecError,
    Uniform,
    from_spec,
)

SPECS = [
    {"dist": "exponential", "mean_ms": 20},
    {"dist": "deterministic", "value_ms": 7},
    {"dist": "lognormal", "mean_ms": 120, "cv": 0.8},
    {"dist": "gamma", "mean_ms": 50, "cv": 0.5},
    {"dist": "gamma", "mean_ms": 50, "cv": 2.0},
    {"dist": "uniform", "low_ms": 10, "high_ms": 30},
    {"dist": "empirical", "values_ms": [1, 2, 2, 3, 10]},
]


@pytest.mark.parametrize("spec", SPECS, ids=lambda s: f"{s['dist']}")
def test_sample_moments_and_quantiles_agree(spec):
    d = from_spec(spec)
    x = d.sample(np.random.default_rng(0), 400_000)
    assert x.shape == (400_000,) and (x >= 0).all()
    assert x.mean() == pytest.approx(d.mean_ms, rel=0.01)
    assert x.std() == pytest.approx(d.std_ms, rel=0.03, abs=1e-9)
    for p in (0.1, 0.5, 0.9, 0.99):
        q = d.quantile(p)
        if spec["dist"] in ("deterministic", "empirical"):  # atoms: F(q-) <= p <= F(q)
            assert np.mean(x < q) <= p + 0.01 and np.mean(x <= q) >= p - 0.01
        else:
            assert np.mean(x <= q) == pytest.approx(p, abs=0.01)
    assert from_spec(d.to_spec()) == d
    scalar = d.sample(np.random.default_rng(1))
    assert np.ndim(scalar) == 0


def test_closed_forms():
    assert Exponential(10).quantile(0.5) == pytest.approx(10 * math.log(2))
    assert LogNormal(100, 0).quantile(0.9) == pytest.approx(100)
    assert Gamma(10, 1.0).quantile(0.5) == pytest.approx(Exponential(10).quantile(0.5), rel=1e-9)
    assert Uniform(0, 10).std_ms == pytest.approx(10 / math.sqrt(12))
    assert Deterministic(3).quantile(0.99) == 3
    assert Empirical([1, 3]).mean_ms == 2
    s = Exponential(10).scaled(0.5)
    assert (s.mean_ms, s.std_ms, s.quantile(0.5)) == pytest.approx((5, 5, 5 * math.log(2)))


def test_same_rng_same_samples():
    d = from_spec({"dist": "lognormal", "mean_ms": 5, "cv": 1})
    assert np.array_equal(d.sample(np.random.default_rng(9), 10), d.sample(np.random.default_rng(9), 10))


@pytest.mark.parametrize(
    "spec, field, accepted",
    [
        ({"dist": "weibull", "mean_ms": 1}, "service_time.dist", "one of exponential"),
        ({"dist": "exponential"}, "service_time.mean_ms", "required"),
        ({"dist": "exponential", "mean_ms": -3}, "service_time.mean_ms", "> 0"),
        ({"dist": "exponential", "mean_ms": "fast"}, "service_time.mean_ms", "a number"),
        ({"dist": "lognormal", "mean_ms": 3, "cv": -1}, "service_time.cv", ">= 0"),
        ({"dist": "uniform", "low_ms": 5, "high_ms": 1}, "service_time.high_ms", ">= low_ms"),
        ({"dist": "exponential", "mean_ms": 1, "sd": 2}, "service_time.sd", "only"),
        ({"dist": "empirical", "values_ms": []}, "service_time.values_ms", "non-empty"),
        ({"dist": "empirical", "values_ms": [1, -2]}, "service_time.values_ms", ">= 0"),
        ("exponential", "service_time", "a mapping"),
    ],
)
def test_bad_specs_name_the_field(spec, field, accepted):
    with pytest.raises(SpecError) as e:
        from_spec(spec)
    assert e.value.field == field and accepted in str(e.value)


def test_every_documented_name_builds():
    built = {s["dist"] for s in SPECS}
    assert built == set(DISTRIBUTIONS)
    with pytest.raises(ValueError, match="quantile level"):
        Exponential(1).quantile(1.0)
