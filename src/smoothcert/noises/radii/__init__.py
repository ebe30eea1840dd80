"""Certified-radius machinery shared by the families: tables with a disk cache, the differential
method and the level-set (Neyman-Pearson) method."""
