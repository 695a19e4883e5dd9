"""Population shares (`--mix`) of either stream: parsing them, and splitting a count by them."""

from __future__ import annotations

from collections.abc import Collection, Mapping


class MixError(ValueError):
    """A --mix that names an unknown population or has no positive share."""


def parse_shares(text: str | None, populations: Collection[str], default: Mapping[str, float]) -> dict[str, float]:
    """'a=0.7,b=0.05' -> shares normalised to 1 (populations not named: 0), each name one of
    `populations`. Empty or None -> a copy of `default`."""
    if not text:
        return dict(default)
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name not in populations:
            raise MixError(f"bad mix entry {part.strip()!r}: use NAME=SHARE with NAME one of {', '.join(populations)}")
        try:
            mix[name] = float(value)
        except ValueError:
            raise MixError(f"bad share in {part.strip()!r}") from None
        if mix[name] < 0:
            raise MixError(f"negative share in {part.strip()!r}")
    total = sum(mix.values())
    if total <= 0:
        raise MixError("the mix has no positive share")
    return {k: v / total for k, v in mix.items() if v > 0}


def allocate(count: int, mix: dict[str, float]) -> dict[str, int]:
    """Inputs per population, summing exactly to `count` (largest remainder)."""
    exact = {k: count * v for k, v in mix.items()}
    counts = {k: int(v) for k, v in exact.items()}
    for k in sorted(exact, key=lambda k: (counts[k] - exact[k], k))[: count - sum(counts.values())]:
        counts[k] += 1
    return counts
