"""The flaky-test runner: a pytest plugin, engines that run it, experiments that name causes, history.

Kept import-free: ``agentdeck.flaky.plugin`` runs inside the user's pytest, possibly another
interpreter, and must not drag in the rest of agentdeck.
"""
