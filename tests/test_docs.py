"""The documentation site builds with no warning, and every snippet of its pages runs.

Both builds run Sphinx in a subprocess, as a reader would run them (docs/install.md): the HTML site with
-W, then the doctest builder, which executes every ``testcode`` block (the snippets train with the
``tiny`` preset and budgets of a few hundred steps, so this stays under a minute)."""

import html
import pathlib
import re
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"

# Pages written by their own tools or owners, whose Python fences are not executed here.
NOT_EXECUTED = {"export.md", "scaling.md", "humanoidbench.md", "benchmark_table.md", "pixels.md"}


def _sphinx(builder: str, tmp_path: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            builder,
            "-d",
            str(tmp_path / "doctrees"),
            str(DOCS),
            str(tmp_path / builder),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.fixture(scope="module")
def built_site(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("docs")
    return tmp_path, _sphinx("html", tmp_path)


def test_site_builds_without_warnings(built_site):
    tmp_path, result = built_site
    assert result.returncode == 0, result.stdout + result.stderr
    html = tmp_path / "html"
    for page in (
        "index",
        "install",
        "quickstart",
        "boom",
        "rl_zoo",
        "speed",
        "evaluation",
        "troubleshooting",
        "validation",
        "changelog",
        "export",
        "scaling",
        "humanoidbench",
        "benchmark_table",
    ):
        assert (html / f"{page}.html").exists(), page
    # autodoc found the classes and their parameters.
    boom_page = (html / "boom.html").read_text()
    for name in ("sb3_boom.BOOM", "sb3_boom.WorldModelPolicy", "lambda_align", "q_dropout"):
        assert name in boom_page, name


def test_internal_links_and_anchors_resolve(built_site):
    """Every link between the site's pages, and every #section it names, exists in the built HTML."""
    tmp_path, result = built_site
    assert result.returncode == 0, result.stdout + result.stderr
    site = tmp_path / "html"
    broken = []
    for page in sorted(site.glob("*.html")):
        for href in re.findall(r'href="([^"]+)"', page.read_text()):
            href = html.unescape(href).split("?")[0]
            if href.startswith(("http:", "https:", "mailto:")):
                continue
            path, _, anchor = href.partition("#")
            target = page.parent / path if path else page
            if not target.exists() or (anchor and target.suffix == ".html" and f'id="{anchor}"' not in target.read_text()):
                broken.append(f"{page.name}: {href}")
    assert not broken, broken


def test_every_snippet_of_the_pages_runs(built_site):
    tmp_path, _ = built_site
    result = _sphinx("doctest", tmp_path)
    output = (tmp_path / "doctest" / "output.txt").read_text() if (tmp_path / "doctest" / "output.txt").exists() else ""
    assert result.returncode == 0, output + result.stdout + result.stderr
    summary = re.search(r"(\d+) tests\n\s+(\d+) failures in tests", output)
    assert summary is not None and int(summary.group(1)) >= 8 and summary.group(2) == "0", output


def test_python_snippets_are_executed_blocks():
    """A plain ```python fence would be shown but never run: the guide's pages use ```{testcode}."""
    for page in sorted(DOCS.glob("*.md")):
        if page.name in NOT_EXECUTED:
            continue
        assert "```python" not in page.read_text(), f"{page.name}: use ```{{testcode}} so the snippet runs"
