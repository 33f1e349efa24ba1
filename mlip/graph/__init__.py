"""Neighbour lists (`neighbor_list`), single-structure graphs and the model batch (`GraphBatch`)."""

from mlip.graph.atomic_graph import AtomicGraph, build_graph
from mlip.graph.neighbors import neighbor_list


def __getattr__(name: str):
    # GraphBatch needs torch; import it only when asked so worker processes stay light.
    if name == "GraphBatch":
        from mlip.graph.batch import GraphBatch

        return GraphBatch
    raise AttributeError(f"module 'mlip.graph' has no attribute '{name}'")


__all__ = ["AtomicGraph", "GraphBatch", "build_graph", "neighbor_list"]
