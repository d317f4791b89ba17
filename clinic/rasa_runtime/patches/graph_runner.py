"""Patch: ``DaskGraphRunner.run``, Rasa's model graph run node by node in a kept order, without
dask (same results).

Checked against Rasa 3.6.21. Gain when added: 0.5-0.6 ms of CPU a call, about three calls a turn
(docs/PERFORMANCE.md). Measured on 2026-12-06 with every patch on and off (`make bench`, Rasa's CPU
a turn at c=10: 14.3-17.1 ms with them, 26.5-26.7 without, a busy shared machine, two runs each way)
and this one left out alone (`scripts/bench_profile.py --without graph_runner`: not distinguishable
from that machine's noise of ~3 ms); docs/PERFORMANCE.md.

Rasa 3.6 runs a trained model as a graph of nodes (NLU components, policies, the prediction
selector) with ``DaskGraphRunner.run``, about three times a turn: once to parse the message and
once for each prediction of the next action. Each call works out again the part of the graph
its targets need (``GraphSchema.minimal_graph_schema``, a walk over every node's parents),
builds a dask graph of it, and has dask order and run it: 0.5-0.6 ms of CPU a call in the
profile (docs/PERFORMANCE.md), more than some of the nodes.

``run`` here does the same work in a kept order: for each list of targets, the nodes they need
are put once in an order where every node comes after the nodes it needs (depth first from
the targets, as ``minimal_graph_schema`` walks them), and each call runs the nodes in that
order, each once, passing each node what dask passes it: the ``(node name, output)`` of each
node it needs, an input given to ``run`` as ``(input name, value)``, or, for a name that is
neither, the bare name (``GraphNode`` then reports it missing, as with dask). The nodes are
Rasa's own ``GraphNode`` objects, hooks included; an exception of a node reaches the caller as
from dask (a ``RuntimeError`` becomes Rasa's ``GraphRunError``). Inputs named like a node are
refused as Rasa refuses them. ``tests/test_patch_graph_runner.py`` compares it with dask on the
trained model's graph.
"""

from typing import Any, Dict, List, Optional, Sequence, Text, Tuple

from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner

from clinic.rasa_runtime.patches.patching import Patch

_rasa_run = DaskGraphRunner.run

# per runner, per tuple of targets: [(node name, GraphNode, names of what it needs)] in run order
_ORDERS = "_clinic_run_orders"
Order = List[Tuple[Text, Any, Tuple[Text, ...]]]


def run_order(runner: DaskGraphRunner, targets: Sequence[Text]) -> Order:
    """The nodes ``targets`` need, each after the nodes it needs (kept per runner and targets)."""
    orders: Dict[Tuple[Text, ...], Order] = runner.__dict__.setdefault(_ORDERS, {})
    key = tuple(targets)
    order = orders.get(key)
    if order is None:
        nodes = runner._graph_schema.nodes
        order, placed = [], set()

        def place(name: Text, path: Tuple[Text, ...]) -> None:
            if name in placed or name not in nodes:  # done, or an input placeholder
                return
            if name in path:
                raise GraphRunError(f"The graph has a cycle through node '{name}'.")
            needs = tuple(nodes[name].needs.values())
            for parent in needs:
                place(parent, path + (name,))
            placed.add(name)
            order.append((name, runner._instantiated_nodes[name], needs))

        for target in key:
            place(target, ())
        orders[key] = order
    return order


def run(
    self: DaskGraphRunner,
    inputs: Optional[Dict[Text, Any]] = None,
    targets: Optional[List[Text]] = None,
) -> Dict[Text, Any]:
    """``DaskGraphRunner.run``: the same outputs, the nodes run in a kept order."""
    run_targets = targets if targets else self._graph_schema.target_names
    order = run_order(self, run_targets)
    results: Dict[Text, Any] = {}
    if inputs:
        names = {name for name, _, _ in order}
        for input_name, input_value in inputs.items():
            if isinstance(input_value, str) and input_value in names:
                raise GraphRunError(
                    f"Input value '{input_value}' clashes with a node name. Make sure "
                    f"that none of the input names passed to the `run` method are the "
                    f"same as node names in the graph schema."
                )
            results[input_name] = (input_name, input_value)
    try:
        for name, node, needs in order:
            results[name] = node(*[results.get(parent, parent) for parent in needs])
    except RuntimeError as e:
        raise GraphRunError("Error running runner.") from e
    return dict(results[target] for target in run_targets)


PATCH = Patch("graph_runner", (DaskGraphRunner, "run", run))
