"""The `aiaas` command line: one module per group of subcommands."""
