"""bytespike: a self-hosted LLM gateway with prepaid accounts and an exact ledger."""

__version__ = "0.1.0"
