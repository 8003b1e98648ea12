"""`python -m device run ...` and `python -m device synthetic-package ...`."""

from device.cli import main

raise SystemExit(main())
