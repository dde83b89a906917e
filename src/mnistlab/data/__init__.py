"""The data layer: the dataset registry, IDX files, downloads, loading, preprocessing."""
