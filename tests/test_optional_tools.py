"""Optional tools in the suite: chromium and basic-pitch are passed over where missing,
except in CI (WAVEGEN_REQUIRE_TOOLS=1, set by .ci/run), where a missing one fails."""

from __future__ import annotations

import pytest

from tests import conftest


def test_a_missing_tool_is_passed_over_here_and_fails_the_test_in_ci(monkeypatch) -> None:
    monkeypatch.setattr(conftest, "REQUIRE_TOOLS", False)
    assert conftest.tool_here(True, "x is missing") is True
    assert conftest.tool_here(False, "x is missing") is False
    monkeypatch.setattr(conftest, "REQUIRE_TOOLS", True)
    assert conftest.tool_here(True, "x is missing") is True
    with pytest.raises(pytest.fail.Exception, match=r"x is missing \(WAVEGEN_REQUIRE_TOOLS=1\)"):
        conftest.tool_here(False, "x is missing")


def test_ci_requires_the_tools() -> None:
    ci = (conftest.REPO_ROOT / ".ci/run").read_text()
    assert "export WAVEGEN_REQUIRE_TOOLS=1" in ci
