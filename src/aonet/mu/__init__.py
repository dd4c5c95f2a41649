"""The Messenger Unit: verifies and routes items, and cranks outboxes durably, exactly once."""
from .app import MessengerUnit, MUError, create_mu_app, trace_table
from .crank import Context, CrankError, plan_result
from .queue import TaskQueue

__all__ = ["Context", "CrankError", "MUError", "MessengerUnit", "TaskQueue", "create_mu_app", "plan_result",
           "trace_table"]
