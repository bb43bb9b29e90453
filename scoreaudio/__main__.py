"""`python -m scoreaudio ...` is the `scoreaudio` command."""

from .cli import main

raise SystemExit(main())
