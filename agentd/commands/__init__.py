"""One module per ``squ-agentd`` subcommand: ``add_parser(sub)`` sets ``func=run``."""
