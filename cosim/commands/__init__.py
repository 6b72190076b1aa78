"""One module per `cosim` subcommand; each has `add_parser(subparsers)` that
registers the command and sets `run` to a function(args) -> exit status."""

COMMANDS = ("simulate", "tile", "netlist", "spotcheck", "calibrate", "waves", "sweep", "evaluate",
            "validate", "example", "report")
