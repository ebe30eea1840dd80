"""Run plumbing: results files and run records, shards, distributed runs, sweeps, atomic files."""
