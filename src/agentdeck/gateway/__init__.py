"""The gateway: the ASGI app agents call instead of the providers, and how it is served.

Import the parts from their modules (``agentdeck.gateway.app.Gateway``,
``agentdeck.gateway.server.GatewayThread``); this package keeps its import light so the
CLI starts fast.
"""
