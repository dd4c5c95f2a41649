"""`python -m aonet.vm.lua`: build the Lua module into the cache and print its path and sha256."""
from .build import main

main()
