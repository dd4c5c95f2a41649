"""The Scheduler Unit: orders each process's messages into a signed, hash-chained log."""
from .app import DEFAULT_MAX_ITEM_SIZE, create_su_app
from .core import (BadRequest, DuplicatePush, Head, InvalidItem, ItemTooLarge, MissingTag, NotAOItem, NotFound,
                   ScheduleError, Slot, UnknownProcess, WrongScheduler, build_assignment, first_hash_chain,
                   next_hash_chain, next_slot)
from .service import Scheduled, SchedulerService
from .verify import ChainReport, verify_chain

__all__ = ["DEFAULT_MAX_ITEM_SIZE", "BadRequest", "ChainReport", "DuplicatePush", "Head", "InvalidItem",
           "ItemTooLarge", "MissingTag", "NotAOItem", "NotFound", "ScheduleError", "Scheduled", "SchedulerService",
           "Slot", "UnknownProcess", "WrongScheduler", "build_assignment", "create_su_app", "first_hash_chain",
           "next_hash_chain", "next_slot", "verify_chain"]
