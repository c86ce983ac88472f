"""Helpers for capsule bookkeeping and for old anysma user code."""

from anysma.utils.capsule_signals import PrototypeIndexTables
from anysma.utils.capsule_signals import dict_to_list
from anysma.utils.capsule_signals import equal_shape
from anysma.utils.capsule_signals import list_to_dict
from anysma.utils.capsule_signals import mixed_shape
from anysma.utils.capsule_signals import prototype_index_tables

__all__ = [
    "PrototypeIndexTables",
    "dict_to_list",
    "equal_shape",
    "list_to_dict",
    "mixed_shape",
    "prototype_index_tables",
]
