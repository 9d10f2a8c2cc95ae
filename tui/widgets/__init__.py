"""Widgets of the bacedge TUI, one concept per module."""

from .banner import ConnectionBanner
from .cells import Cell
from .header import ClusterHeader
from .log_pane import LogPane
from .log_view import LogView
from .table import Column, KeyedTable

__all__ = [
    "Cell",
    "ClusterHeader",
    "Column",
    "ConnectionBanner",
    "KeyedTable",
    "LogPane",
    "LogView",
]
