"""The TUI's screens: six main screens (number keys 1-6), details and dialogs."""

from .base import WRITE_ACTIONS, BaseScreen, TableScreen
from .command_log import CommandLogScreen
from .confirm import Ask, ConfirmScreen
from .download import DownloadScreen
from .executions import ExecutionsScreen
from .help import HelpScreen
from .job_detail import JobDetailScreen
from .jobs import JobsScreen
from .logs import LogsScreen
from .node_detail import NodeDetailScreen
from .nodes import NodesScreen
from .overview import OverviewScreen
from .submit import SubmitScreen

__all__ = [
    "WRITE_ACTIONS",
    "Ask",
    "BaseScreen",
    "CommandLogScreen",
    "ConfirmScreen",
    "DownloadScreen",
    "ExecutionsScreen",
    "HelpScreen",
    "JobDetailScreen",
    "JobsScreen",
    "LogsScreen",
    "NodeDetailScreen",
    "NodesScreen",
    "OverviewScreen",
    "SubmitScreen",
    "TableScreen",
]
