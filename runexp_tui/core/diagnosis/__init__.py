"""The failure-diagnosis engine's internals: log normalisation, pip names and the pattern rules.

The public entry points live in `runexp_tui.core.diagnose`; this package keeps each concern small.
"""
