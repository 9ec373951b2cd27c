"""Lint and types: ruff over the project, mypy over the library."""

from __future__ import annotations

from tests.conftest import run


def test_ruff_is_clean(repo_root, venv_env) -> None:
    run(
        ["ruff", "check", "wavegen_core", "stages", "pipelines", "benchmarks", "tests", "tools"],
        repo_root,
        venv_env,
    )


def test_mypy_is_clean_on_the_library(repo_root, venv_env) -> None:
    run(["mypy", "wavegen_core", "stages", "pipelines", "tools"], repo_root, venv_env)
