"""Value parsers shared by the subcommands (the library's, under the names the CLI uses)."""

from .._values import int_list, parse_values

__all__ = ["int_list", "parse_values"]
