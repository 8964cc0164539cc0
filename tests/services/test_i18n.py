"""Chinese first: every UI string in the code is in the catalogue and translated to Chinese."""

import subprocess
import sys
from pathlib import Path

from babel.messages.pofile import read_po

ROOT = Path(__file__).resolve().parents[2]
TRANSLATIONS = ROOT / "kiosk" / "translations"


def _ids(path: Path, locale: str | None = None) -> dict[str, str]:
    with path.open("rb") as fh:
        catalogue = read_po(fh, locale=locale)
    return {m.id if isinstance(m.id, str) else m.id[0]: m.string for m in catalogue if m.id}


def test_every_message_has_a_chinese_translation():
    zh = _ids(TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po", "zh")
    assert len(zh) > 50
    missing = [msgid for msgid, text in zh.items() if not text]
    assert missing == []


def test_catalogue_is_up_to_date_with_the_code(tmp_path):
    """A string added to a template or a view without `make messages` fails here."""
    pot = tmp_path / "messages.pot"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "babel.messages.frontend",
            "extract",
            "-F",
            "babel.cfg",
            "-k",
            "_l",
            "--ignore-dirs=.* .venv __pycache__ tests bench instance static node_modules",
            "-o",
            str(pot),
            ".",
        ],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    in_code = set(_ids(pot))
    for locale in ("zh", "en"):
        in_catalogue = set(_ids(TRANSLATIONS / locale / "LC_MESSAGES" / "messages.po", locale))
        assert in_code - in_catalogue == set(), f"not in the {locale} catalogue: run `make messages`"


def test_the_scanner_has_one_name():
    """The kiosk's scanner is 扫码口 in every Chinese string ("the scanner" in English; docs/ux.md),
    never 扫描口, which two booking strings once said."""
    zh = _ids(TRANSLATIONS / "zh" / "LC_MESSAGES" / "messages.po", "zh")
    assert [msgid for msgid, text in zh.items() if "扫描口" in text] == []
    named = [msgid for msgid, text in zh.items() if "扫码口" in text]
    assert len(named) >= 5 and all("under the scanner" in msgid for msgid in named)
