"""Benchmarks of the CRM core, run from the repository root: ``python -m bench <name>``.

Each benchmark is a module with ``add_arguments(parser)`` and ``run(args)``; see bench/README.md.
"""
