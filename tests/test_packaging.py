"""A non-editable install must carry the templates and static files with it."""

import subprocess
import sys
import zipfile

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_wheel_contains_templates_and_static_files(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(ROOT)],
        check=True, capture_output=True,
    )
    wheel = next(tmp_path.glob("podarchive-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    templates = sorted(p.name for p in (ROOT / "templates").rglob("*.html"))
    assert templates, "no templates in the checkout"
    for name in templates:
        assert any(n.startswith("archive/templates/") and n.endswith("/" + name) for n in names), name
    assert any(n.startswith("archive/static/") and n.endswith(".css") for n in names)
    assert "archive/cli/__init__.py" in names and "ingest/pipeline.py" in names
