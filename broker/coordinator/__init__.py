"""The group coordinator: consumer groups and committed offsets, sans-IO.

One ``GroupCoordinator`` per ``__consumer_offsets`` partition this broker
leads; broker/server/api_groups.py is the trio shell that feeds it.
"""

from broker.coordinator.config import OFFSETS_TOPIC, GroupConfig
from broker.coordinator.coordinator import GroupCoordinator
from broker.coordinator.group import TRANSITIONS, ClassicGroup, GroupState
from broker.coordinator.records import AppendRecords
from broker.coordinator.responses import GROUP_APIS, GroupRequest, error_response

__all__ = [
    "GROUP_APIS",
    "OFFSETS_TOPIC",
    "TRANSITIONS",
    "AppendRecords",
    "ClassicGroup",
    "GroupConfig",
    "GroupCoordinator",
    "GroupRequest",
    "GroupState",
    "error_response",
]
