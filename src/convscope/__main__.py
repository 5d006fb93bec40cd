"""``python -m convscope``."""

from convscope.cli import main

main()
