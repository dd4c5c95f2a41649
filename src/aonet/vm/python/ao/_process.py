"""Who this process is: id, owner, module, tags and trusted authorities (set on the first message)."""
from __future__ import annotations


class Process:
    __slots__ = ("id", "owner", "module", "tags", "tag_list", "authorities", "booted", "namespace")

    def __init__(self) -> None:
        self.id = ""
        self.owner = ""
        self.module = ""
        self.tags: dict[str, str] = {}
        self.tag_list: list[dict] = []
        self.authorities: list[str] = []
        self.booted = False
        self.namespace: dict = {"__name__": "__process__", "__builtins__": __builtins__}

    def init(self, env: dict, first_msg: dict) -> None:
        proc = env.get("Process") or {}
        tl = proc.get("Tags") or []
        self.tag_list = tl
        tags: dict[str, str] = {}
        auth: list[str] = []
        for t in tl:
            n, v = t.get("name"), t.get("value")
            tags.setdefault(n, v)
            if n == "Authority" and isinstance(v, str):
                auth.extend(a.strip() for a in v.split(",") if a.strip())
        self.tags = tags
        self.authorities = auth
        self.id = proc.get("Id") or first_msg.get("Id") or ""
        # From the env, not from whichever message happens to boot the interpreter (AO: the Process
        # message's From, i.e. its From-Process tag or its signer).
        self.owner = tags.get("From-Process") or proc.get("Owner") or first_msg.get("From") or ""
        self.module = tags.get("Module") or (env.get("Module") or {}).get("Id") or ""
        self.booted = True

    def trusts(self, msg) -> bool:
        """AO's rule: a message signed by its sender, or coming from/through an authority."""
        frm, owner = msg.get("From"), msg.get("Owner")
        if frm == owner:
            return True
        auth = self.authorities
        if not auth:
            return True
        return frm in auth or owner in auth

    def __repr__(self) -> str:
        return f"Process(id={self.id!r}, owner={self.owner!r}, module={self.module!r})"


PROCESS = Process()
