"""The bench scripts import each other as top-level modules (`support`, `summary`), as they do when
run as `python bench/<script>.py`; these tests need no services."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
