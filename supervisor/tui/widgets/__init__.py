"""The panes of the dashboard; each takes a ``ModelView`` (or a part of it) and shows it."""

from supervisor.tui.widgets.count import CountPane
from supervisor.tui.widgets.failures import FailureGroups, FailuresPane
from supervisor.tui.widgets.header import RunHeader
from supervisor.tui.widgets.logpane import LogPane
from supervisor.tui.widgets.phases import PhasesPane
from supervisor.tui.widgets.running import RunningPane
from supervisor.tui.widgets.trend import TrendPane

__all__ = [
    "CountPane",
    "FailureGroups",
    "FailuresPane",
    "LogPane",
    "PhasesPane",
    "RunHeader",
    "RunningPane",
    "TrendPane",
]
