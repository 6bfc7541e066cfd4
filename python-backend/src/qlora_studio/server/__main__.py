"""`python -m qlora_studio.server`: the same as `qlora-studio serve` (see cli.py)."""
import sys

from .cli import main

sys.exit(main())
