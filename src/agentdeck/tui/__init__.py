"""The Textual console. The only package that imports Textual; it talks to gateways through ``engine``."""
