"""Job functions used by the job tests (importable by the worker process)."""

import os
import time


def count_to(ctx):
    steps = int(ctx.params.get("steps", 3))
    for step in range(1, steps + 1):
        time.sleep(float(ctx.params.get("pause", 0)))
        ctx.progress(step / steps, f"step {step} of {steps}")
    return {"counted": steps}


def crash(ctx):
    ctx.progress(0.5, "about to crash")
    os._exit(13)


def explode(ctx):
    raise ZeroDivisionError("division by zero")
