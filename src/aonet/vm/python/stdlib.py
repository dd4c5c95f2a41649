"""Which CPython stdlib modules a Python process may import (frozen into the module).

Why an allowlist: every module listed here is marshalled into the Module's data, so every CU loads
the same bytes. Modules that reach the host (sockets, threads, subprocesses, files, signals) are
left out on purpose; see docs/python-processes.md.
"""
from __future__ import annotations

# Plain modules (lib/python3.11/<name>.py).
MODULES: tuple[str, ...] = (
    "__future__", "_collections_abc", "_compat_pickle", "_compression", "_markupbase", "_py_abc",
    "_sitebuiltins", "_strptime", "_weakrefset", "abc", "ast", "base64", "bisect", "calendar",
    "codecs", "colorsys", "contextlib", "contextvars", "copy", "copyreg", "csv", "dataclasses",
    "datetime", "decimal", "difflib", "dis", "enum", "fnmatch", "fractions", "functools",
    "genericpath", "graphlib", "hashlib", "heapq", "hmac", "inspect", "io", "ipaddress", "keyword",
    "linecache", "locale", "numbers", "opcode", "operator", "os", "pickle", "posixpath", "pprint",
    "quopri", "random", "reprlib", "secrets", "shlex", "sre_compile", "sre_constants", "sre_parse",
    "stat", "statistics", "string", "stringprep", "struct", "textwrap", "token", "tokenize",
    "traceback", "types", "typing", "uuid", "warnings", "weakref", "zipimport", "ntpath",
    "codeop", "gettext", "glob", "uu", "platform", "threading",
)

# Packages (lib/python3.11/<name>/), with every submodule except tests.
PACKAGES: tuple[str, ...] = (
    "collections", "encodings", "html", "importlib", "json", "re", "tomllib", "urllib",
)

# Submodules of the packages above that are left out (they reach the host or need missing C code).
EXCLUDED: frozenset[str] = frozenset({
    "encodings.mbcs", "encodings.oem", "encodings.cp65001",
    "urllib.request", "urllib.robotparser", "urllib.response", "urllib.error",
    "importlib.metadata", "importlib.resources", "importlib.readers", "importlib.simple",
    "importlib.metadata._adapters", "importlib.metadata._collections", "importlib.metadata._functools",
    "importlib.metadata._itertools", "importlib.metadata._meta", "importlib.metadata._text",
})

# Built-in C modules (linked into libpython) a process must not reach: removed from the inittab.
BLOCKED_BUILTINS: tuple[str, ...] = (
    "_socket", "select", "_testbuffer", "_testinternalcapi", "_testcapi", "_testclinic",
    "_xxtestfuzz", "xxsubtype", "_crypt", "faulthandler", "_lsprof", "_tracemalloc", "_signal",
)
