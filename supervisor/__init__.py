"""netra-supervisor: supervise long test-deploy loops against a staging backend."""

__version__ = "0.1.0"
