"""Derived dataset names of the robustness lab: one canonical name per input set, clear errors.

Planted bugs this module catches (each tried by hand, one at a time):
- eps parsed as k/256 or as a fraction of 1 instead of 1/255 units (``eps4`` != 4/255);
- a non-canonical spelling accepted (``~pgd-i10@eps4`` beside ``~pgd@eps4``: two names, one set);
- the surrogate dropped from a transfer name (two surrogates' sets sharing a name);
- eps 0 or > 1 and severity 0 or 6 accepted;
- a name with a ``/`` produced (not a store folder).
"""

from __future__ import annotations

import pytest

from rsr_bench.errors import ConfigError
from rsr_bench.robust.naming import AttackSpec, Derived, parse_derived, parse_eps, parse_severities


@pytest.mark.parametrize("text, expect", [("4/255", 4.0), ("eps4", 4.0), ("0.5/255", 0.5), ("1", 255.0),
                                          (str(2.55 / 255), 2.55), ("14/255", 14.0)])
def test_eps_in_units_of_one_255th(text, expect):
    assert parse_eps(text) == pytest.approx(expect)


@pytest.mark.parametrize("text", ["0", "0/255", "-1/255", "1.5", "256/255", "abc", "4/0"])
def test_eps_outside_0_1_or_not_a_number_is_an_error(text):
    with pytest.raises(ConfigError, match="eps"):
        parse_eps(text)


def test_severities_ranges_lists_and_bounds():
    assert parse_severities("1-5") == (1, 2, 3, 4, 5)
    assert parse_severities("5,1,3") == (1, 3, 5)
    assert parse_severities(2) == (2,)
    for bad in ("0-5", "6", "1-7", "x", ""):
        with pytest.raises(ConfigError, match="severit"):
            parse_severities(bad)


@pytest.mark.parametrize("name", [
    "demo_clean~jpeg@3", "demo_clean~motion_blur@5", "demo_clean~pgd@eps4", "demo_clean~pgd-lpips-i20-a0.5@eps8",
    "demo_clean~transfer@eps0.5", "demo_clean~transfer-from-impressionism.df2k@eps2", "My Set~gaussian_noise@1",
])
def test_canonical_names_round_trip_and_are_store_safe(name):
    d = parse_derived(name)
    assert d is not None and d.name == name
    assert "/" not in name and "\\" not in name


def test_ordinary_names_are_not_derived():
    assert parse_derived("demo_clean") is None


def test_attack_fields_from_the_name():
    d = parse_derived("demo_clean~pgd-lpips-i20-a0.5@eps8")
    assert d.kind == "pgd" and d.base == "demo_clean"
    a = d.attack
    assert (a.loss, a.iters, a.step255, a.eps) == ("lpips", 20, 0.5, pytest.approx(8 / 255))
    assert a.alpha == pytest.approx(0.5 / 255)
    default = parse_derived("demo_clean~pgd@eps4").attack
    assert default.alpha == pytest.approx(2.5 * 4 / 10 / 255)  # 2.5 eps / iterations
    t = parse_derived("demo_clean~transfer-from-impressionism.df2k@eps2").attack
    assert t.surrogate == "impressionism.df2k" and t.kind == "transfer"


def test_names_from_specs_are_canonical():
    a = AttackSpec("transfer", 4.0, loss="l1", iters=10, surrogate="x.y")
    assert Derived("b", attack=a).name == "b~transfer-from-x.y@eps4"
    assert Derived("b", corruption="jpeg", severity=2).name == "b~jpeg@2"


@pytest.mark.parametrize("name, words", [
    ("demo_clean~pgd-i10@eps4", "write it as 'demo_clean~pgd@eps4'"),
    ("demo_clean~jpg@3", "Did you mean: jpeg"),
    ("demo_clean~jpeg@6", "severit"),
    ("demo_clean~jpeg@x", "severit"),
    ("demo_clean~pgd@4", "eps<k>"),
    ("demo_clean~pgd@eps0", "outside"),
    ("demo_clean~pgd-foo@eps1", "unknown attack option"),
    ("demo_clean~pgd-from-x.y@eps1", "only a transfer attack"),
    ("~jpeg@3", "derived set is"),
    ("demo_clean~jpeg", "derived set is"),
])
def test_malformed_names_say_what_is_wrong(name, words):
    with pytest.raises(ConfigError) as info:
        parse_derived(name)
    assert words in str(info.value) and name in str(info.value)
