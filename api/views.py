"""The last whole view of recently used sessions, to answer compact update results with."""

from __future__ import annotations

from collections import OrderedDict

from workflows.shared import SessionChange, SessionView


class SessionViews:
    """The last whole view of recently used sessions, to merge compact update results into.

    Versions count a session's changes, so a view at `version - 1` plus the change
    is exactly the view at `version`; anything else is a miss and the caller queries.
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._views: OrderedDict[str, SessionView] = OrderedDict()

    def remember(self, view: SessionView) -> SessionView:
        if view.version == 0:
            return view
        session_id = view.summary.id
        cached = self._views.get(session_id)
        if cached is None or cached.version <= view.version:
            self._views[session_id] = view
        self._views.move_to_end(session_id)
        while len(self._views) > self._capacity:
            self._views.popitem(last=False)
        return view

    def holds(self, session_id: str) -> bool:
        """Whether a view of the session is kept."""
        return session_id in self._views

    def merge(self, session_id: str, change: SessionChange) -> SessionView | None:
        cached = self._views.get(session_id)
        if cached is None:
            return None
        if cached.version >= change.version:
            # A later answer came first; unless the session was rewound (a reset in Temporal).
            if _holds(cached, change):
                return cached
            del self._views[session_id]
            return None
        if cached.version != change.version - 1:
            return None
        return self.remember(
            SessionView(
                summary=change.summary,
                safety_checks=cached.safety_checks + ([change.check] if change.check else []),
                history=cached.history + ([change.status_change] if change.status_change else []),
                version=change.version,
            )
        )


def _holds(view: SessionView, change: SessionChange) -> bool:
    """Whether the view already shows the change."""
    if change.check is not None:
        return change.check in view.safety_checks
    return change.status_change is None or change.status_change in view.history
