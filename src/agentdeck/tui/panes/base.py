"""What every live pane does: ingest events cheaply always, render only when on screen.

Why the split: the console drains the engine a few times a second and hands each pane its
events. ``ingest`` runs for every pane (a hidden graph must not have a hole in it) and is
only bookkeeping; ``flush`` renders and runs only for the pane the user is looking at,
inside the app's ``batch_update()``, so a frame costs the same at 10 or 10,000 events/s.
"""

from __future__ import annotations

from typing import ClassVar

from agentdeck.bus import Event


class LivePane:
    """Mixin for panes fed by the event pump."""

    EVENTS: ClassVar[tuple[type[Event], ...]] = ()
    """The bus event classes this pane ingests (dispatched by type, not by name)."""

    def ingest(self, events: list[Event]) -> None:
        """Record events (no rendering). Called for every drain, visible or not."""

    def flush(self) -> None:
        """Render what changed since the last flush. Called only while the pane is visible."""
