"""``python -m ngxws`` is the ``ngxws`` command."""

from ngxws.cli import main

main()
