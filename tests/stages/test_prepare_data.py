"""The prepare_data stage as DVC runs it: a subprocess in the repo's working directory."""

from __future__ import annotations

import json
from pathlib import Path

import soundfile as sf
import yaml

from tests.conftest import run, stage_argv


def _params(tmp_path: Path, repo_root: Path, **data: object) -> None:
    params = yaml.safe_load((repo_root / "params.yaml").read_text())
    params["data"].update(max_pieces=2, num_workers=1, **data)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))


def test_stage_writes_corpus_metrics_and_picture(tmp_path, repo_root, venv_env) -> None:
    _params(tmp_path, repo_root)
    result = run(
        ["python", "-m", "stages.prepare_data", *stage_argv("prepare_data")], tmp_path, venv_env
    )
    assert "prepare_data: 2 pieces made, 0 rejected" in result.stderr
    assert "piece/s" in result.stderr  # the progress bar shows a rate
    manifest = json.loads((tmp_path / "data/prepared/manifest.json").read_text())["pieces"]
    assert len(manifest) == 2
    for piece in manifest:
        assert sf.info(tmp_path / "data/prepared" / piece["audio"]).samplerate == 16000
    metrics = json.loads((tmp_path / "reports/prepare_data/metrics.json").read_text())
    assert metrics["pieces"] == 2 and metrics["notes"] == sum(p["notes"] for p in manifest)
    png = (tmp_path / "reports/prepare_data/example.png").read_bytes()
    assert png.startswith(b"\x89PNG")


def test_missing_soundfont_names_what_to_install(tmp_path, repo_root, venv_env) -> None:
    _params(
        tmp_path,
        repo_root,
        render={"soundfont": str(tmp_path / "gone.sf2"), "release_tail": 0.25, "peak": 0.9},
    )
    result = run(
        ["python", "-m", "stages.prepare_data", *stage_argv("prepare_data")],
        tmp_path,
        venv_env,
        check=False,
    )
    assert result.returncode == 1
    assert "apt-get install fluidsynth timgm6mb-soundfont" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "data/prepared").exists()
