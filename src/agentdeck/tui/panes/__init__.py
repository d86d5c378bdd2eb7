"""Console panes: each ingests events always and renders only while on screen."""
