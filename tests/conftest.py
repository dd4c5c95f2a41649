"""Shared fixtures for every test file: the SU's (fixtures_su), the devnet's
(fixtures_devnet) and the wasm runtime's (vm_fixtures).

Test files import only the helpers they call (SUProcess, free_port, mu_post, ...) from those modules.
"""
pytest_plugins = ["fixtures_su", "fixtures_devnet", "vm_fixtures"]
