"""Measures of the work a call does that, unlike wall-clock time, do not depend on machine load.

`steps()` counts Python lines executed plus calls (Python and C) while its block runs: compare it on
two input sizes to assert a complexity. `allocated()` measures the peak of memory allocated by
Python and numpy in its block: assert that a cap refused a request before allocating it.
Timings belong in bench/.
"""
import contextlib
import sys
import tracemalloc


class Work:
    """What a measured block did: `steps` and `calls` (see steps()), `peak_bytes` (allocated())."""

    steps = 0
    calls = 0
    peak_bytes = 0


@contextlib.contextmanager
def steps():
    """Count Python line, call and return events and C calls in the block (the test's own frame
    excluded) as `steps`, Python function calls as `calls`: `with steps() as work: f(x)`."""
    work = Work()

    def trace(frame, event, arg):
        work.steps += 1
        work.calls += event == "call"
        return trace

    def profile(frame, event, arg):
        if event == "c_call":
            work.steps += 1

    previous_trace, previous_profile = sys.gettrace(), sys.getprofile()
    sys.settrace(trace)
    sys.setprofile(profile)
    try:
        yield work
    finally:
        sys.settrace(previous_trace)
        sys.setprofile(previous_profile)


@contextlib.contextmanager
def allocated():
    """Peak bytes allocated (and still traced) in the block, numpy arrays included."""
    work = Work()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    tracemalloc.reset_peak()
    before = tracemalloc.get_traced_memory()[0]
    try:
        yield work
    finally:
        work.peak_bytes = tracemalloc.get_traced_memory()[1] - before
        if not was_tracing:
            tracemalloc.stop()


def growth(measure, small, large):
    """measure(large) / measure(small): about large/small for linear work, its square for
    quadratic work."""
    return measure(large) / measure(small)
