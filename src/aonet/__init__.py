"""aonet: the AO actor-oriented computer in Python."""
__version__ = "0.1.0"
