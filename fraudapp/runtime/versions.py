"""The faust-streaming and aiokafka releases fraudapp's fixes of their internals (this
package, README.md here) were checked against: a worker on any other release refuses to
start, in one line, rather than run fixes whose premises nobody has checked.

When a new release comes: run the suite (the pinning tests name each defect) and the
reliability tests on it, then add it here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib.metadata import PackageNotFoundError, version

CHECKED: Mapping[str, tuple[str, ...]] = {
    "faust-streaming": ("0.15.3",),
    "aiokafka": ("0.14.0",),
}


def unchecked(installed: Callable[[str], str] = version) -> list[str]:
    """'name version' of each installed distribution not among the checked releases."""
    out = []
    for name, releases in CHECKED.items():
        try:
            found = installed(name)
        except PackageNotFoundError:
            found = "(not installed)"
        if found not in releases:
            out.append(f"{name} {found}")
    return out


def require_checked_releases() -> None:
    wrong = unchecked()
    if wrong:
        wanted = ", ".join(f"{name} {' or '.join(releases)}" for name, releases in CHECKED.items())
        raise SystemExit(f"fraudapp: its runtime fixes were checked against {wanted}, not {', '.join(wrong)} "
                         "(fraudapp/runtime/versions.py says how to check a new release)")
