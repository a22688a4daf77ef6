"""The subcommands of `ebbflow`, one module per group."""
