"""Process runtimes behind one small interface (see base.py and docs/abi.md)."""
from .base import DEFAULT_COMPUTE_LIMIT, DEFAULT_MEMORY_LIMIT, Instance, LimitError, Limits, Result, Runtime, VMError, parse_size

__all__ = ["DEFAULT_COMPUTE_LIMIT", "DEFAULT_MEMORY_LIMIT", "Instance", "LimitError", "Limits", "Result",
           "Runtime", "VMError", "parse_size"]
