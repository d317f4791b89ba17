"""A thinc model whose walk over its layers is listed once, not searched on every call.

spaCy's parser (the NER) calls thinc's ``set_dropout_rate(model, 0.0)`` on every ``predict``,
which walks the model's whole tree breadth-first (a queue, a set of ids, about 65 nodes for
en_core_web_sm's NER, of which the tok2vec's ~55 that ``clinic.nlu.ner_tok2vec`` no longer
runs): about 30-45 us of each message. ``list_walk(model)`` makes the model remember that
walk: the same nodes in the same order, walked anew whenever the model's own layers are not
the ones listed (spaCy resizing the output layer replaces one of them). A tree changed deeper
down is not noticed: it is for a model used for prediction, as the Rasa component uses it.
"""

from typing import Any, Dict, Iterable, List, Tuple

from thinc.api import Model

# by the model's id: its layers when walked, and the nodes of the walk
_WALKS: Dict[int, Tuple[List[Any], List[Any]]] = {}


class ListedWalk(Model):
    """A ``Model`` whose breadth-first walk is the listed one (no state of its own: the
    instance keeps thinc's slots, so a model can be given this class and back)."""

    __slots__ = ()

    def walk(self, *, order: str = "bfs") -> Iterable[Any]:
        listed = _WALKS.get(self.id)
        if order != "bfs" or listed is None:
            return super().walk(order=order)
        layers, nodes = listed
        if layers != self.layers:  # the same layer objects (Model has no __eq__)
            nodes = list(super().walk())
            _WALKS[self.id] = (list(self.layers), nodes)
        return iter(nodes)


def list_walk(model: Any) -> None:
    """Make ``model`` (a thinc ``Model`` itself, not a subclass) remember its walk."""
    if type(model) is not Model and type(model) is not ListedWalk:
        raise TypeError(f"list_walk: {type(model).__name__} is not thinc's Model")
    _WALKS[model.id] = (list(model.layers), list(Model.walk(model)))
    model.__class__ = ListedWalk


def unlist_walk(model: Any) -> None:
    """thinc's own walk again (for comparisons)."""
    if type(model) is ListedWalk:
        model.__class__ = Model
    _WALKS.pop(model.id, None)
