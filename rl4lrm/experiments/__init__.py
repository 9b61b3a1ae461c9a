"""Canned studies that return DataFrames: the experiments the notebooks show, reusable in scripts."""
