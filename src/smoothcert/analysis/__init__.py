"""Analysis of results: certified accuracy at radii, envelopes over runs, tables."""
