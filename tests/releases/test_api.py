"""The public release-facts API: PEP 440 ordering, exact and inexact resolution."""

from __future__ import annotations

import pytest

from ascend_pd.errors import SpecError
from ascend_pd.releases import known_releases, newest_stable, parse_version, resolve


def test_post_release_sorts_above_its_release_and_its_candidates() -> None:
    assert parse_version("0.23.0rc1") < parse_version("0.23.0") < parse_version("0.23.0.post1")
    assert parse_version("v0.11.0") == parse_version("0.11.0")


def test_a_non_version_is_a_spec_error_with_a_hint() -> None:
    with pytest.raises(SpecError) as caught:
        parse_version("latest")
    assert caught.value.hint and "0.23.0.post1" in caught.value.hint


def test_known_releases_are_in_pep440_order_and_include_the_current_stable() -> None:
    known = known_releases()
    assert known == sorted(known, key=parse_version)
    assert "0.23.0.post1" in known
    assert newest_stable() == max(
        (v for v in known if not parse_version(v).is_prerelease), key=parse_version
    )


def test_a_known_release_resolves_to_itself() -> None:
    found = resolve("0.23.0.post1")
    assert found.exact and found.basis == "0.23.0.post1" and found.note is None
    assert found.facts.version == "0.23.0.post1"


def test_a_release_newer_than_the_data_says_whose_facts_it_used() -> None:
    newest = known_releases()[-1]
    found = resolve("99.0.0")
    assert not found.exact and found.basis == newest
    assert found.note is not None and newest in found.note and "99.0.0" in found.note


def test_a_release_older_than_the_data_is_refused() -> None:
    with pytest.raises(SpecError, match="older than every release"):
        resolve("0.7.3")
