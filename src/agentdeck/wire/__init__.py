"""The wire layer: one module per protocol, and the SSE codec they share."""
