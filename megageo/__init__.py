"""megageo: long-context sequence models for atmospheric forecasting, from one CPU to many GPU nodes."""

__version__ = "0.1.0"
