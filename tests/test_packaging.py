"""The wheel: every subpackage, the built-in model, the configs and the recipes are in it, and an
installed copy composes the README's recipes from any folder (no checkout needed)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import zipfile

import pytest
from conftest import REPO

from scoreaudio.config import find_recipe


def test_every_subpackage_is_listed_for_the_wheel():
    # read as text: tomllib is not in Python 3.10, which the project supports
    block = re.search(r"^packages = \[(.*?)\]", (REPO / "pyproject.toml").read_text(), re.S | re.M).group(1)
    listed = set(re.findall(r'"([\w.]+)"', block))
    assert "scoreaudio" in listed
    found = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "scoreaudio").rglob("__init__.py")}
    assert found <= listed, f"add {sorted(found - listed)} to [tool.setuptools] packages in pyproject.toml"


def test_recipes_are_found_by_name_and_by_the_readme_path(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./recipes here: the package's own are used
    assert find_recipe("quickstart").name == "quickstart.yaml"
    assert find_recipe("recipes/ljspeech.yaml").name == "ljspeech.yaml"
    assert find_recipe("recipes/no_such_recipe.yaml") is None
    assert find_recipe("elsewhere/quickstart.yaml") is None  # a path elsewhere means that path


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    src = out / "src"  # a copy: building in the checkout would leave build/ and egg-info behind
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "scoreaudio", "configs", "recipes"):
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(
            REPO / name,
            src / name,
            **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}),
        )
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if built.returncode != 0 and "No matching distribution" in built.stderr + built.stdout:
        pytest.skip("pip cannot fetch setuptools for an isolated build here")
    assert built.returncode == 0, built.stderr[-2000:]
    (wheel,) = out.glob("scoreaudio-*.whl")
    site = out / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return wheel, site


def test_the_wheel_has_the_model_configs_and_recipes(installed_wheel):
    names = set(zipfile.ZipFile(installed_wheel[0]).namelist())
    for needed in (
        "scoreaudio/models/denoiser_default.safetensors",
        "scoreaudio/models/denoiser_default.md",
        "scoreaudio/_configs/model/unet2d_tiny.yaml",
        "scoreaudio/_configs/data/synthetic.yaml",
        "scoreaudio/_recipes/quickstart.yaml",
        "scoreaudio/_recipes/denoiser.yaml",
    ):
        assert needed in names
    recipes = {p.name for p in (REPO / "recipes").glob("*.yaml")}
    assert {n.rsplit("/", 1)[1] for n in names if n.startswith("scoreaudio/_recipes/")} == recipes


def test_an_installed_wheel_composes_the_readme_recipe_anywhere(installed_wheel, tmp_path):
    code = (
        "import scoreaudio.config as c; cfg = c.compose('recipes/quickstart.yaml', ['model=unet2d_tiny']); "
        "print(c.config_dir()); print(cfg.name, cfg.model.preset)"
    )
    env = {**os.environ, "PYTHONPATH": str(installed_wheel[1])}
    res = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert res.returncode == 0, res.stderr[-2000:]
    where, name = res.stdout.strip().splitlines()
    assert where.startswith(str(installed_wheel[1])) and where.endswith("_configs")
    assert name.startswith("quickstart")
