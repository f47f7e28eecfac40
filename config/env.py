"""Typed readers for environment variables.

Every variable the settings read goes through these helpers, which record its name in
``NAMES`` so that deployment descriptions can be checked against the settings.
"""

import os

NAMES: set[str] = set()


def env(name: str, default: str = "") -> str:
    NAMES.add(name)
    return os.environ.get(name, default)


def envbool(name: str, default: bool = False) -> bool:
    value = env(name, "1" if default else "0").strip().lower()
    return value in {"1", "true", "yes", "on"}


def envint(name: str, default: int) -> int:
    raw = env(name, str(default)).strip()
    try:
        return int(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a whole number, got {raw!r}") from exc


def envfloat(name: str, default: float) -> float:
    raw = env(name, str(default)).strip()
    try:
        return float(raw)
    except ValueError as exc:
        raise ValueError(f"{name} must be a number such as 0.8, got {raw!r}") from exc


def envlist(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in env(name, default).split(",") if item.strip()]
