"""normrepro: reproduce, by running them, the published claims about Batch Normalization and its relatives."""

__version__ = "0.1.0"
