"""curate: build, curate, review and publish clinical chain-of-thought reasoning datasets."""

__version__ = "0.1.0"
