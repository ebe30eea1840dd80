"""Pal & Sulam (TMLR 2023): smoothed risk over training x smoothing noise, and the population
(synthetic) experiments. Paper experiment code, apart from the core library."""
