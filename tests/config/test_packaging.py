"""pyproject.toml builds without deprecation warnings on the setuptools it asks for."""

import tomllib

from django.conf import settings
from packaging.requirements import Requirement

PYPROJECT = tomllib.loads((settings.BASE_DIR / "pyproject.toml").read_text())


def test_the_licence_is_an_spdx_expression_on_a_setuptools_that_reads_it():
    # A table (`{ text = "MIT" }`) makes setuptools print a deprecation banner on every install.
    assert PYPROJECT["project"]["license"] == "MIT"
    (setuptools,) = [
        Requirement(r) for r in PYPROJECT["build-system"]["requires"] if r.startswith("setuptools")
    ]
    # SPDX strings for project.license arrived in setuptools 77.
    assert not setuptools.specifier.contains("76.9") and setuptools.specifier.contains("77.0")
