"""When is a piece of shell input a whole program? Pure functions, so the shell's Enter key is testable.

Lua: brackets balance and block depth (`function`, `if`, `do`, `repeat` open; `end`, `until` close)
is zero, outside strings (quotes, `[[long]]`) and comments (`--`, `--[[...]]`).
Python: brackets balance, no trailing backslash, and a block opened by a line ending in `:` is
closed by an empty line (as in the Python REPL).
"""
from __future__ import annotations

import re

LUA_OPEN = {"function", "if", "do", "repeat"}
LUA_CLOSE = {"end", "until"}
PAIRS = {")": "(", "]": "[", "}": "{"}
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LONG = re.compile(r"\[(=*)\[")


def _scan(text: str, lang: str) -> tuple[list[str], list[str], bool]:
    """Return (words outside strings/comments, unclosed brackets, inside an unfinished string)."""
    words: list[str] = []
    stack: list[str] = []
    i, n = 0, len(text)
    comment = "--" if lang == "lua" else "#"
    while i < n:
        c = text[i]
        if text.startswith(comment, i):
            if lang == "lua":
                m = _LONG.match(text, i + 2)
                if m:
                    close = "]" + m.group(1) + "]"
                    j = text.find(close, m.end())
                    if j < 0:
                        return words, stack, True
                    i = j + len(close)
                    continue
            j = text.find("\n", i)
            i = n if j < 0 else j + 1
            continue
        if lang == "lua" and c == "[":
            m = _LONG.match(text, i)
            if m:
                close = "]" + m.group(1) + "]"
                j = text.find(close, m.end())
                if j < 0:
                    return words, stack, True
                i = j + len(close)
                continue
        if lang == "python" and text.startswith(('"""', "'''"), i):
            q = text[i:i + 3]
            j = text.find(q, i + 3)
            if j < 0:
                return words, stack, True
            i = j + 3
            continue
        if c in "\"'":
            j = i + 1
            while j < n and text[j] != c and text[j] != "\n":
                j += 2 if text[j] == "\\" else 1
            if j >= n:
                return words, stack, True
            i = j + 1
            continue
        if c in "([{":
            stack.append(c)
        elif c in ")]}":
            if stack and stack[-1] == PAIRS[c]:
                stack.pop()
            else:
                return words, [], False          # unbalanced close: let the runtime report it
        elif c.isalpha() or c == "_":
            m = _WORD.match(text, i)
            words.append(m.group())
            i = m.end()
            continue
        i += 1
    return words, stack, False


def is_complete(text: str, lang: str = "lua") -> bool:
    """True when Enter should submit `text` rather than open a new line."""
    if not text.strip() or text.lstrip().startswith("."):
        return True
    words, open_brackets, in_string = _scan(text, lang)
    if in_string or open_brackets:
        return False
    if lang == "lua":
        depth = sum(w in LUA_OPEN for w in words) - sum(w in LUA_CLOSE for w in words)
        return depth <= 0
    lines = text.split("\n")
    if lines[-1].rstrip().endswith("\\"):
        return False
    opened = any(line.rstrip().endswith(":") for line in lines)
    return not opened or lines[-1].strip() == ""


def guess_lang(module_tags: dict[str, str] | None, module_id: str | None = None,
               modules: dict[str, str] | None = None) -> str:
    """'python' for a process whose module is the devnet's Python one (or says so), else 'lua'."""
    if modules and module_id:
        for name, mid in modules.items():
            if mid == module_id:
                return "python" if "python" in name.lower() else "lua"
    for v in (module_tags or {}).values():
        if "python" in v.lower():
            return "python"
    return "lua"
