"""Development tools stay outside the product: no app imports devtools."""

import ast
from pathlib import Path

from django.conf import settings

PRODUCT = ("annotator", "expansion", "curation", "config")


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
    return names


def test_no_product_module_imports_devtools():
    offenders = [
        str(path.relative_to(settings.BASE_DIR))
        for app in PRODUCT
        for path in (settings.BASE_DIR / app).rglob("*.py")
        if any(name.split(".")[0] == "devtools" for name in _imported_modules(path))
    ]
    assert offenders == []
