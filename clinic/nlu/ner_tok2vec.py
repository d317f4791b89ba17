"""The token vectors of en_core_web_sm's NER for one doc, without thinc's layer machinery.

spaCy's NER (a transition-based parser) first turns the doc into token vectors with its own
tok2vec: hash embeddings of four token attributes, a maxout mixing layer, four convolution
blocks (window, maxout, layer norm, residual), then a linear projection. Run through thinc's
``Model`` objects that is about 60 layer calls (chains, ``with_array``, ``concatenate``,
parameter and dimension look-ups) for a message of eight tokens: about 0.3 ms of the 1.1 ms
the network takes, the rest being the arithmetic.

``install(ner)`` gives the NER's tok2vec model a forward function computing the same arrays
with the same thinc/numpy operations, in the same order, on arrays of the same shapes
(including the padding thinc puts around a sequence for the convolutions), so the vectors
are bit for bit the ones thinc computes. It does so only for a model of exactly this
architecture (checked layer by layer) whose vectors it reproduces on a few probe texts; any
other model, a batch of several docs, an empty doc or training keeps thinc's own forward.
tests/test_nlu_equivalence.py compares both on all the project's texts.
"""

import logging
from typing import Any, Callable, Dict, List, Optional, Tuple

import numpy as np

logger = logging.getLogger(__name__)

# The leaves of en_core_web_sm 3.x's NER tok2vec (spacy.Tok2Vec.v2 with MultiHashEmbed.v2 and
# MaxoutWindowEncoder.v2, then the parser's list2array >> Linear), in the order they run.
EMBED = ["extract_features", "list2ragged", "with_array", "with_array", "ragged2list"]
BLOCK = ["expand_window", "maxout", "layernorm", "dropout"]
# thinc's own forward function of each model given the direct one, by the model's id
_THINC_FORWARDS: Dict[int, Callable] = {}
PROBES = ["Hi, I'm Jane Example from Austin, Texas.", "can i do this on 3 March 2025?", "no", "?"]


def _leaves(model: Any) -> List[Any]:
    """A chain's layers, nested chains flattened (thinc names a chain ``a>>b``)."""
    if model.name.count(">>") and not model.name.startswith(("residual", "with_array")):
        return [leaf for layer in model.layers for leaf in _leaves(layer)]
    return [model]


class _Maxout:
    def __init__(self, layer: Any) -> None:
        ops = layer.ops
        n_out, pieces, n_in = layer.get_dim("nO"), layer.get_dim("nP"), layer.get_dim("nI")
        self.ops, self.n_out, self.pieces = ops, n_out, pieces
        self.W = ops.reshape2f(layer.get_param("W"), n_out * pieces, n_in)
        self.b = ops.reshape1f(layer.get_param("b"), n_out * pieces)

    def __call__(self, X: Any) -> Any:  # thinc.layers.maxout.forward
        Y = self.ops.gemm(X, self.W, trans2=True)
        Y += self.b
        best, _ = self.ops.maxout(self.ops.reshape3f(Y, Y.shape[0], self.n_out, self.pieces))
        return best


class _LayerNorm:
    def __init__(self, layer: Any) -> None:
        self.G, self.b = layer.get_param("G"), layer.get_param("b")

    def __call__(self, X: Any) -> Any:  # thinc.layers.layernorm.forward and its helpers
        mu = X.mean(axis=1, keepdims=True)
        var = X.var(axis=1, keepdims=True) + 1e-08
        Xhat = (X - mu) * var ** (-1.0 / 2.0)
        Y = Xhat * self.G
        Y += self.b
        return Y


class Tok2VecForward:
    """The forward pass of one model of the known architecture (``None`` from ``of`` else)."""

    def __init__(self, model: Any) -> None:
        tok2vec, list2array, linear = model.layers
        embed, encode = tok2vec.layers
        extract, _, with_embed, with_mix, _ = embed.layers
        self.ops = model.ops
        self.columns = extract.attrs["columns"]
        self.tables: List[Tuple[Any, Any, int]] = []
        for getitem_embed in with_embed.layers[0].layers:
            getitem, embed_table = getitem_embed.layers
            self.tables.append((getitem.attrs["index"], embed_table.get_param("E"), embed_table.attrs["seed"]))
        mix_maxout, mix_norm, _ = _leaves(with_mix.layers[0])
        self.mix = (_Maxout(mix_maxout), _LayerNorm(mix_norm))
        self.pad = encode.attrs["pad"]
        self.blocks = []
        for residual in encode.layers[0].layers:
            window, maxout, norm, _ = _leaves(residual.layers[0])
            self.blocks.append((window.attrs["window_size"], _Maxout(maxout), _LayerNorm(norm)))
        self.W, self.b = linear.get_param("W"), linear.get_param("b")

    @classmethod
    def of(cls, model: Any) -> Optional["Tok2VecForward"]:
        try:
            tok2vec, list2array, linear = model.layers
            embed, encode = tok2vec.layers
            names = [layer.name for layer in embed.layers]
            if [n.split("(")[0] for n in names] != EMBED or (list2array.name, linear.name) != ("list2array", "linear"):
                return None
            with_embed, with_mix = embed.layers[2], embed.layers[3]
            if with_embed.layers[0].name != "|".join(["ints-getitem>>hashembed"] * len(with_embed.layers[0].layers)):
                return None
            if [layer.name for layer in _leaves(with_mix.layers[0])] != ["maxout", "layernorm", "dropout"]:
                return None
            if not encode.name.startswith("with_array") or any(
                not r.name.startswith("residual") or [leaf.name for leaf in _leaves(r.layers[0])] != BLOCK
                for r in encode.layers[0].layers
            ):
                return None
            return cls(model)
        except (ValueError, AttributeError, KeyError):
            return None

    def __call__(self, doc: Any) -> Any:
        """The vectors of ``doc``'s tokens: ``model.predict([doc])`` (for a doc of one token
        or more)."""
        ops = self.ops
        # extract_features, list2ragged
        X = ops.flatten([ops.asarray2i(doc.to_array(self.columns), dtype="uint64")])
        # with_array(concatenate(ints_getitem >> HashEmbed, ...))
        vectors = []
        for index, table, seed in self.tables:
            keys = ops.hash(ops.as_contig(X[index], dtype="uint64"), seed) % table.shape[0]
            vectors.append(ops.gather_add(table, keys))
        maxout, norm = self.mix
        X = norm(maxout(ops.xp.hstack(vectors)))  # with_array(maxout >> layernorm >> dropout)
        n = X.shape[0]
        # ragged2list, with_array(residual(expand_window >> maxout >> layernorm >> dropout) x 4, pad)
        X = ops.flatten([X], pad=self.pad)
        for window, maxout, norm in self.blocks:
            X = X + norm(maxout(ops.seq2col(X, window)))
        X = ops.flatten([X[self.pad:self.pad + n]])  # unflatten (the padding dropped), list2array
        Y = ops.gemm(X, self.W, trans2=True)  # linear
        Y += self.b
        return Y


def _same(a: Any, b: Any) -> bool:
    return a.dtype == b.dtype and a.shape == b.shape and bool(np.array_equal(a, b))


def install(nlp: Any, pipe: str = "ner") -> bool:
    """Give the pipe's tok2vec model the direct forward pass for one doc, if it is of the
    known architecture and reproduces thinc's vectors on the probes; True if installed."""
    model = nlp.get_pipe(pipe).model.layers[0]
    thinc_forward = _THINC_FORWARDS.get(model.id, model._func)
    forward = Tok2VecForward.of(model)
    if forward is None:
        logger.info("%s: its tok2vec is not the known architecture; thinc's forward kept", pipe)
        return False
    probes = [nlp.make_doc(text) for text in PROBES]
    if not all(_same(forward(doc), thinc_forward(model, [doc], is_train=False)[0]) for doc in probes):
        logger.warning("%s: the direct tok2vec forward differs from thinc's; thinc's kept", pipe)
        return False

    def direct(model: Any, docs: Any, is_train: bool) -> Tuple[Any, Callable]:
        if is_train or len(docs) != 1 or len(docs[0]) == 0:
            return thinc_forward(model, docs, is_train)
        return forward(docs[0]), _no_backprop

    _THINC_FORWARDS[model.id] = thinc_forward
    model._func = direct
    return True


def uninstall(nlp: Any, pipe: str = "ner") -> None:
    """thinc's own forward again (for comparisons)."""
    model = nlp.get_pipe(pipe).model.layers[0]
    model._func = _THINC_FORWARDS.get(model.id, model._func)


def _no_backprop(d_vectors: Any) -> Any:
    raise NotImplementedError("the direct tok2vec forward is for prediction only")
