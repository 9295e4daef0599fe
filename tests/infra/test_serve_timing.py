"""Which functions `aiaas serve` runs on its event loop, and which on a thread."""

from __future__ import annotations

from infra.local.timing import OFFLOAD_AFTER_S, OFFLOAD_MODEL_S, Timing

MLP, TRANSFORMER = "POST /models/mlp/predict", "POST /models/transformer/predict"


def test_a_first_call_goes_to_a_thread_it_may_be_a_cold_start() -> None:
    assert Timing().slow(MLP)


def test_cheap_calls_run_inline_and_calls_long_in_their_model_on_a_thread() -> None:
    timing = Timing()
    timing.record(MLP, 0.00004, model_seconds=0.00001)  # ~the demo MLP: 40 us, 10 in the model
    timing.record(TRANSFORMER, 0.00022, model_seconds=0.00019)  # its transformer
    assert not timing.slow(MLP)
    assert OFFLOAD_MODEL_S < 0.00019 and timing.slow(TRANSFORMER)


def test_calls_over_the_cpu_limit_go_to_a_thread_whatever_their_model_time() -> None:
    timing = Timing()
    timing.record(MLP, 0.00004)
    for _ in range(50):
        timing.record(MLP, OFFLOAD_AFTER_S * 3)  # e.g. a big batch parsed in Python
    assert timing.slow(MLP)


def test_the_table_of_paths_stays_bounded() -> None:
    timing = Timing()
    for index in range(Timing.MAX_PATHS + 5):
        timing.record(f"GET /scan/{index}", 0.00001, model_seconds=0.0)
    assert len(timing.average) <= Timing.MAX_PATHS and len(timing.model) <= Timing.MAX_PATHS


def test_a_scan_of_unknown_paths_leaves_the_routes_timings() -> None:
    """Each 404's path was kept, and at the cap the table was cleared with the real routes in
    it: a scan of 10,000 unknown versions sent every route's next call to the thread pool."""
    timing = Timing()
    timing.record(MLP, 0.00001)
    for index in range(Timing.MAX_PATHS * 2):
        timing.record(f"POST /models/m/versions/{index}/predict", 0.00001, status=404)
    assert not timing.slow(MLP) and list(timing.average) == [MLP]


def test_a_route_whose_cost_a_value_sets_goes_to_a_thread_however_cheap_its_calls() -> None:
    """A model with a Loop whose trip count is an input: its cheap calls say nothing of its
    heavy ones, the first of which held the loop (functions/runtime/input_cost.py)."""
    timing = Timing()
    looping = "POST /models/looping/predict"
    serving = {"varies": True}  # what the function tells of the version that answers next
    timing.probes[looping] = lambda: serving["varies"]
    timing.probes[MLP] = None  # a route that runs no model, or a function that tells nothing
    for _ in range(200):
        timing.record(looping, 0.00004, model_seconds=0.00001)
        timing.record(MLP, 0.00004, model_seconds=0.00001)
    assert timing.slow(looping) and not timing.slow(MLP)
    serving["varies"] = False  # another version serves there now: told before its next call
    assert not timing.slow(looping)
