"""`python -m agentdeck` is the same as the `agentdeck` command."""

from agentdeck.cli import main

raise SystemExit(main())
