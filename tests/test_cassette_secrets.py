"""No cassette holds a credential: API keys, bearer tokens, cookies, ``Authorization``."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from langchain_letta.testing import scan_for_secrets

ROOT = Path(__file__).resolve().parent.parent
CASSETTE_ROOTS = (
    ROOT / "cassettes",
    ROOT / "examples" / "cassettes",
    ROOT / "examples" / "user_project" / "cassettes",
)


def configured_secrets() -> list[str]:
    return [os.environ[name] for name in ("LETTA_API_KEY", "OPENAI_API_KEY") if name in os.environ]


def test_cassettes_exist() -> None:
    assert any(root.is_dir() and any(root.rglob("*.yaml")) for root in CASSETTE_ROOTS)


def test_no_secret_in_any_cassette() -> None:
    findings = scan_for_secrets(CASSETTE_ROOTS, extra_values=configured_secrets())
    assert findings == [], "\n".join(
        f"{f.path.relative_to(ROOT)}:{f.line}: {f.kind}: {f.excerpt}" for f in findings
    )


PLANTED = {
    "authorization header": "      authorization:\n      - Bearer abcdefghijklmnop0123\n",
    "bearer token": "      note: 'token Bearer eyJhbGciOiJIUzI1NiJ9.payload'\n",
    "api key": "      key_used: sk-let-0123456789abcdefABCDEF\n",
    "api key header": "      x-api-key:\n      - 0123456789abcdef\n",
    "cookie header": "      set-cookie:\n      - session=abc123; HttpOnly\n",
    "secret field": '      json: {"api_key": "a1b2c3d4e5f6g7h8i9"}\n',
    "secret query parameter": "    uri: http://h/v1/agents/?api_key=a1b2c3d4e5f6\n",
    "configured secret": "      value: my-very-own-letta-key-42\n",
}


@pytest.mark.parametrize("kind", sorted(PLANTED))
def test_scanner_flags_a_planted_secret(kind: str, tmp_path: Path) -> None:
    source = next((ROOT / "cassettes").rglob("*.yaml"))
    copy = tmp_path / "cassettes" / source.parent.name / source.name
    copy.parent.mkdir(parents=True)
    shutil.copy(source, copy)
    assert scan_for_secrets([tmp_path]) == []  # the clean copy passes

    with copy.open("a", encoding="utf-8") as out:
        out.write("# planted\nextra:\n" + PLANTED[kind])

    findings = scan_for_secrets([tmp_path], extra_values=["my-very-own-letta-key-42"])
    assert kind in {f.kind for f in findings}
    assert all(f.path == copy for f in findings)
