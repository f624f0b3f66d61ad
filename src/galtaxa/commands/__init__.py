"""Extra ``galtaxa`` subcommands, one module each.

Each module defines ``register(subparsers)`` adding its parser(s) with
``set_defaults(func=...)``; :mod:`galtaxa.cli` registers every module listed
in :data:`COMMAND_MODULES`.  A handler returns the process exit code.
"""

COMMAND_MODULES: tuple[str, ...] = ("multimodal", "train")
