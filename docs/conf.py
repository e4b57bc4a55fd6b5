"""Sphinx configuration of the sb3-boom documentation (built by tests/test_docs.py with -W)."""

import os
import sys

# The package is imported from the checkout, installed or not.
sys.path.insert(0, os.path.abspath(".."))

import sb3_boom  # noqa: E402

project = "sb3-boom"
author = "sb3-boom contributors"
copyright = "2026, sb3-boom contributors"
version = release = sb3_boom.__version__

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.doctest",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# Markdown pages link to each other's sections as `page.md#section-title`.
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]
# Generated pages (benchmark_table.md) go from a page title straight to level-3 sections.
suppress_warnings = ["myst.header"]

autodoc_member_order = "bysource"

html_theme = "sphinx_rtd_theme"
html_title = f"sb3-boom {release}"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_theme_options = {"navigation_depth": 3}

# The snippets of the pages run under `sphinx-build -b doctest` (tests/test_docs.py): each group in a
# scratch directory, on one thread, so that saved files and timings stay out of the way.
doctest_global_setup = """
import os as _os, tempfile as _tempfile
import torch as _torch
_cwd = _os.getcwd()
_os.chdir(_tempfile.mkdtemp(prefix="sb3_boom_doctest_"))
_torch.set_num_threads(1)
"""
doctest_global_cleanup = """
_os.chdir(_cwd)
"""
