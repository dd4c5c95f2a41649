"""Ready-made process programs: `from ao.blueprints import token`."""
