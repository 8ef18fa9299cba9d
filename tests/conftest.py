"""Make ``support`` (helpers shared by the test folders) importable from each."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
