from runexp_tui.cli import main

raise SystemExit(main())
