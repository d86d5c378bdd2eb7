"""Benchmarks and the simulations they run on, kept out of the domain packages.

`agentdeck bench` (src/agentdeck/cli/bench.py) runs them; each module also runs alone with
``python -m agentdeck.bench.<name>``. Numbers depend on the machine: measured, never asserted.
"""
