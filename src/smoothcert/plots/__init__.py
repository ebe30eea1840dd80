"""All figures. matplotlib is imported here and nowhere else in the library."""
