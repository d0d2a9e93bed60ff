"""`python -m gpudesk` is the `gpudesk` command."""

from gpudesk.bot.cli import main

main()
