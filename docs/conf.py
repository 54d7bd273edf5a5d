"""Sphinx configuration of convgrad's documentation site.

Build: python -m sphinx -W -b html docs docs/_build/html   (warnings are errors; tests/test_docs.py does it)
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "_ext"))
sys.path.insert(0, os.path.dirname(HERE))          # the convgrad checkout this page documents

import convgrad  # noqa: E402

project = "convgrad"
author = "the convgrad authors"
release = version = convgrad.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "myst_parser",
    "convgrad_api",        # docs/_ext: `.. convgrad-api::` pages of every public name
    "convgrad_cli",        # docs/_ext: `.. convgrad-cli::` the command reference from the argparse parsers
]
source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "results", "Thumbs.db", ".DS_Store"]

autodoc_member_order = "bysource"
autodoc_default_options = {}
autoclass_content = "class"
autodoc_typehints = "signature"
autodoc_preserve_defaults = True
napoleon_google_docstring = True
napoleon_numpy_docstring = False
napoleon_use_ivar = True
napoleon_custom_sections = ["Shape"]

myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3

html_theme = "alabaster"
html_title = f"convgrad {release}"
html_static_path = []
