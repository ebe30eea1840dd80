"""Analysis of results: certified accuracy at radii, envelopes over runs, tables, exports.

- ``results``: a results file as typed arrays (``read_results``), grouped by noise family;
- ``accuracy``: certified accuracy, envelopes, average certified radius, radii lists;
- ``tables``: text, markdown, CSV and LaTeX tables;
- ``export``: [CRK19]'s results format.
"""

from smoothcert.analysis.accuracy import *  # noqa: F401,F403
from smoothcert.analysis.accuracy import __all__ as _accuracy
from smoothcert.analysis.results import *  # noqa: F401,F403
from smoothcert.analysis.results import __all__ as _results
from smoothcert.analysis.tables import *  # noqa: F401,F403
from smoothcert.analysis.tables import __all__ as _tables

__all__ = [*_results, *_accuracy, *_tables]
