"""The ``smoothcert`` command line: one module per subcommand (see ``main``)."""
