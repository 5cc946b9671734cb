"""One module per ``squ`` subcommand: ``add_parser(sub)`` sets ``func=run``."""
