from __future__ import annotations

import sys

try:
    from .cli import main
except KeyboardInterrupt:
    # Ctrl-C while the modules load: nothing has been read or written yet.
    print("pinsync: interrupted; no file was changed", file=sys.stderr)
    sys.exit(130)

sys.exit(main())
