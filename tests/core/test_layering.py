"""core/ is plain Python: it never imports Streamlit, the app shell or the pages."""

import ast
import re
from pathlib import Path

CORE = Path(__file__).resolve().parents[2] / "core"
FORBIDDEN = ("streamlit", "app", "pages")


def _imported_modules(path: Path) -> list[str]:
    names = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append(node.module)
    return names


def test_core_never_imports_streamlit_app_or_pages():
    offenders = [
        f"{path.relative_to(CORE.parent)} imports {name}"
        for path in CORE.rglob("*.py")
        for name in _imported_modules(path)
        if name.split(".")[0] in FORBIDDEN
    ]
    assert offenders == []


def test_the_scan_sees_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import os\nfrom streamlit import session_state\n")
    assert "streamlit" in _imported_modules(bad)


def test_pages_hold_no_sql_and_no_training():
    pages = Path(__file__).resolve().parents[2] / "pages"
    pattern = re.compile(r"(?<![\w.])select\(|session\.exec|\.execute\(|\.fit\(")
    offenders = [p.name for p in pages.glob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
