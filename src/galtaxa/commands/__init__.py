"""Every ``galtaxa`` subcommand, one module per subcommand (the supervised ones share :mod:`.train`).

Each module defines ``register(subparsers)`` adding its parser(s) with ``set_defaults(func=...)``; a handler
takes the parsed arguments and returns the process exit code.  The handlers parse, call the library and print:
the work itself is in the library (:mod:`galtaxa.pipeline`, :mod:`galtaxa.supervise`, ...).
:data:`COMMANDS` lists the modules in the order ``galtaxa --help`` shows them; a new subcommand is one module
and one entry there.
"""

from . import ablation, demo, info, init, inspect_app, report, run, train, validate

__all__ = ["COMMANDS", "register_all"]

COMMANDS = (info, init, run, report, validate, inspect_app, demo, ablation, train)


def register_all(subparsers) -> None:
    """Add every subcommand of :data:`COMMANDS` to ``subparsers``."""
    for module in COMMANDS:
        module.register(subparsers)
