"""Tier routing: which model a request goes to, when to re-ask a tier up, and what it saved.

Pure functions and small objects, no I/O and no Textual: the gateway calls them on the
request path, the CLI (`agentdeck route`, `agentdeck savings`) and the console read them.
"""

from agentdeck.routing.classifier import DEFAULT_RULES, Decision, Rules, classify, count_files, count_services
from agentdeck.routing.extract import extract_text, system_text
from agentdeck.routing.quality import error_problem, json_requested, quality_problem
from agentdeck.routing.router import ALIASES, DowngradeWatch, Route, Router, RoutingError, UnknownModel

__all__ = [
    "ALIASES", "DEFAULT_RULES", "Decision", "DowngradeWatch", "Route", "Router", "RoutingError", "Rules",
    "UnknownModel", "classify", "count_files", "count_services", "error_problem", "extract_text",
    "json_requested", "quality_problem", "system_text",
]
