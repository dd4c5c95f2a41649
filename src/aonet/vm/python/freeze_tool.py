"""Runs *inside* the pinned CPython 3.11 WASI build to marshal the frozen modules.

Why inside: marshal output depends on the compiler version, the hash seed and reference counts,
so compiling with the same interpreter that will run the code makes the Module reproducible.
Input  /work/manifest.txt: lines "name<TAB>is_package<TAB>source path".
Output /work/frozen.bin (concatenated marshalled code) and /work/frozen.idx (name, is_package, size).
"""
import marshal
import sys


def main() -> None:
    out = open("/work/frozen.bin", "wb")
    idx = []
    with open("/work/manifest.txt", encoding="utf-8") as f:
        rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]
    for name, is_pkg, path in rows:
        with open(path, "rb") as src:
            source = src.read()
        code = compile(source, "<frozen %s>" % name, "exec", dont_inherit=True, optimize=0)
        data = marshal.dumps(code)
        out.write(data)
        idx.append("%s\t%s\t%d\n" % (name, is_pkg, len(data)))
    out.close()
    with open("/work/frozen.idx", "w", encoding="utf-8") as f:
        f.writelines(idx)


main()
sys.exit(0)
