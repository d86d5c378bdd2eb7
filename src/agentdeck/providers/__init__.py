"""Providers: presets for OpenAI-compatible hosts, base_url handling, which provider serves a model."""

from agentdeck.providers.checks import provider_warnings
from agentdeck.providers.matching import ModelMatcher, is_glob, snapshot_base
from agentdeck.providers.presets import PRESETS, Preset
from agentdeck.providers.urls import endpoint_prefix, join_endpoint

__all__ = ["PRESETS", "ModelMatcher", "Preset", "endpoint_prefix", "is_glob", "join_endpoint", "provider_warnings",
           "snapshot_base"]
