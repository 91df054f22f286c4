"""``python -m fusekit.bench bench ...`` / ``python -m fusekit.bench datasets``."""

from fusekit.bench.cli import main

raise SystemExit(main())
