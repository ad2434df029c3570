"""Where things are, for tests."""

from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parents[2]
