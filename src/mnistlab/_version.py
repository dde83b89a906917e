"""mnistlab's version, said once: the package's metadata (pyproject.toml), ``mnistlab.__version__``,
a run's config.json and an ONNX file's metadata all read it here."""

__version__ = "0.1.0"
