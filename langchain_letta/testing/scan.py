"""Credentials left in cassette files: a check for a whole cassette tree."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SecretFinding", "scan_for_secrets"]


@dataclass(frozen=True)
class SecretFinding:
    """Something that looks like a credential in a cassette file."""

    path: Path
    line: int
    kind: str
    excerpt: str


_SCAN_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("authorization header", re.compile(r"(?im)^\s*-?\s*['\"]?(?:proxy-)?authorization['\"]?\s*:")),
    ("api key header", re.compile(r"(?im)^\s*-?\s*['\"]?x-(?:letta-)?api-key['\"]?\s*:")),
    ("cookie header", re.compile(r"(?im)^\s*-?\s*['\"]?(?:set-)?cookie['\"]?\s*:")),
    ("bearer token", re.compile(r"(?i)\bbearer\s+(?!<scrubbed>)[A-Za-z0-9._~+/=-]{8,}")),
    ("api key", re.compile(r"\b(?:sk|pk|rk)-(?!<scrubbed>)[A-Za-z0-9_-]{16,}")),
    (
        "secret field",
        re.compile(
            r"(?i)['\"]?\b[a-z_-]*(?:api[_-]?key|password|secret|access[_-]?token)['\"]?\s*[:=]"
            r"\s*['\"]?(?!<scrubbed>)[A-Za-z0-9._~+/=-]{12,}"
        ),
    ),
    (
        "secret query parameter",
        re.compile(
            r"(?i)[?&](?:api_key|apikey|access_token|token)="
            r"(?!%3Cscrubbed%3E)[^&\s'\"]{6,}"
        ),
    ),
)


def scan_for_secrets(
    roots: Iterable[str | Path], extra_values: Iterable[str] = ()
) -> list[SecretFinding]:
    """Credentials found in the cassette files under `roots` (`.yaml`/`.yml`/`.json`).

    `extra_values` are literal secrets to look for too (say, the `LETTA_API_KEY` in
    use); values shorter than 8 characters are ignored.
    """
    literals = [value for value in extra_values if value and len(value) >= 8]
    findings: list[SecretFinding] = []
    for path in _cassette_files(roots):
        text = path.read_text(encoding="utf-8", errors="replace")
        for kind, pattern in _SCAN_PATTERNS:
            for match in pattern.finditer(text):
                findings.append(_finding(path, text, match.start(), kind, match.group(0)))
        for value in literals:
            start = text.find(value)
            if start >= 0:
                findings.append(_finding(path, text, start, "configured secret", value[:4] + "..."))
    return findings


def _cassette_files(roots: Iterable[str | Path]) -> Iterator[Path]:
    for root in roots:
        root = Path(root)
        if root.is_file():
            yield root
        elif root.is_dir():
            for path in sorted(root.rglob("*")):
                if path.is_file() and path.suffix in {".yaml", ".yml", ".json"}:
                    yield path


def _finding(path: Path, text: str, start: int, kind: str, excerpt: str) -> SecretFinding:
    return SecretFinding(path, text.count("\n", 0, start) + 1, kind, excerpt[:60])
