from fusekit.cli import main

raise SystemExit(main())
