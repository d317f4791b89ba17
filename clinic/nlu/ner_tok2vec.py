"""The token vectors of en_core_web_sm's NER for one doc, without thinc's layer machinery.

spaCy's NER (a transition-based parser) first turns the doc into token vectors with its own
tok2vec: hash embeddings of four token attributes mixed by a maxout layer and a layer norm,
four convolution blocks (window, maxout, layer norm, residual), then a linear projection. Run
through thinc's ``Model`` objects that is about 60 layer calls (chains, ``with_array``,
``concatenate``, parameter and dimension look-ups) for a message of eight tokens.

``install(ner)`` gives the NER's tok2vec model a forward function computing the same floats
with the same numpy/BLAS operations, minus the work whose result is thrown away or known:

- a token's mixed embedding depends only on its four attribute ids: it is kept in a bounded
  cache keyed by those ids (never the text) and computed only for ids not seen before;
- thinc runs each convolution block on every row of the padded sequence, but the tokens'
  final vectors depend only on the rows their remaining windows reach, so each block runs on
  those rows (fewer rows each block; the last one on the tokens alone);
- numpy's ``mean``/``var`` of the layer norm are spelled out as the ufunc calls they make.

Every row of a BLAS product, a maxout or a layer norm depends only on that row's inputs
(checked: the same floats whatever rows are computed together), so the vectors are bit for
bit the ones thinc computes. It is installed only for a model of exactly this architecture
(checked layer by layer) whose vectors it reproduces on a few probe texts; any other model, a
batch of several docs, an empty doc or training keeps thinc's own forward. The weights are
read once: it is for prediction only. tests/test_nlu_equivalence.py compares both on all the
project's texts, in two orders.
"""

import logging
import threading
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
        best, _ = self.ops.maxout(Y.reshape((Y.shape[0], self.n_out, self.pieces)))
        return best


class _LayerNorm:
    def __init__(self, layer: Any) -> None:
        self.G, self.b = layer.get_param("G"), layer.get_param("b")

    def __call__(self, X: Any) -> Any:
        """thinc.layers.layernorm.forward, with numpy's ``X.mean`` and ``X.var`` (axis 1)
        spelled out: the same ufunc calls on the same values (the mean computed once, not
        again inside ``var``), so the same floats."""
        count = np.intp(X.shape[1])
        mu = np.add.reduce(X, axis=1, keepdims=True)
        np.true_divide(mu, count, out=mu, casting="unsafe")
        Xhat = X - mu
        var = np.multiply(Xhat, Xhat)
        var = np.add.reduce(var, axis=1, keepdims=True)
        np.true_divide(var, count, out=var, casting="unsafe")
        var += 1e-08
        Xhat *= np.power(var, -1.0 / 2.0, out=var)  # what ``var ** (-1.0 / 2.0)`` calls
        Xhat *= self.G
        Xhat += self.b
        return Xhat


class _EmbedCache:
    """The mixed embeddings of token feature tuples (NORM, PREFIX, SUFFIX, SHAPE ids) seen
    before, as rows of one matrix: at most ``size`` of them, all forgotten when full. A
    tuple's embedding depends on the tuple alone (and the weights, which prediction does
    not change), so a cached row is the row thinc would compute."""

    def __init__(self, width: int, size: int) -> None:
        self.matrix = np.empty((size, width), dtype="float32")
        self.rows: Dict[Tuple[int, ...], int] = {}
        self.lock = threading.Lock()

    def __len__(self) -> int:
        return len(self.rows)

    def take(self, keys: List[Tuple[int, ...]], embed: Callable[[List[int]], Any], out: Any) -> bool:
        """The embeddings of ``keys`` into ``out``, those missing made by ``embed(their
        positions in keys)`` and kept; False if the message alone has more distinct keys
        than the cache holds (``out`` untouched)."""
        with self.lock:
            rows = self.rows
            found = [rows.get(key) for key in keys]
            if None in found:
                size = self.matrix.shape[0]
                missing = _first_positions(keys, found)
                if len(rows) + len(missing) > size:  # forget all, keep this message's
                    missing = _first_positions(keys, [None] * len(keys))
                    if len(missing) > size:
                        return False
                    rows.clear()
                first = len(rows)
                self.matrix[first:first + len(missing)] = embed(list(missing.values()))
                for row, key in enumerate(missing, first):
                    rows[key] = row
                found = [rows[key] for key in keys]
            np.take(self.matrix, found, axis=0, out=out, mode="clip")
            return True


def _first_positions(keys: List[Tuple[int, ...]], found: List[Optional[int]]) -> Dict[Tuple[int, ...], int]:
    """Each key not found, with its first position."""
    positions: Dict[Tuple[int, ...], int] = {}
    for i, (key, row) in enumerate(zip(keys, found)):
        if row is None and key not in positions:
            positions[key] = i
    return positions


class Tok2VecForward:
    """The forward pass of one model of the known architecture (``None`` from ``of`` else)."""

    CACHE_SIZE = 16384  # token feature tuples (rows of 96 floats: 6 MB)

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
        self.width = self.mix[0].n_out
        self.cache = _EmbedCache(self.width, self.CACHE_SIZE)

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

    def embed(self, features: Any) -> Any:
        """The mixed embeddings of rows of token features: with_array(concatenate(ints_getitem
        >> HashEmbed, ...)) >> with_array(maxout >> layernorm >> dropout). Each row's result
        depends on that row only (the same floats whichever rows are computed together)."""
        ops = self.ops
        vectors = []
        for index, table, seed in self.tables:
            keys = ops.hash(ops.as_contig(features[index], dtype="uint64"), seed) % table.shape[0]
            vectors.append(ops.gather_add(table, keys))
        maxout, norm = self.mix
        return norm(maxout(ops.xp.hstack(vectors)))

    def __call__(self, doc: Any) -> Any:
        """The vectors of ``doc``'s tokens: ``model.predict([doc])`` (for a doc of one token
        or more).

        thinc pads the sequence with ``pad`` zero rows on each side and runs every
        convolution block on all its rows (each row reading the ``window`` rows on each side
        of it, zeros beyond the ends). The tokens' vectors after the last block depend only
        on the rows within the windows still to come, so each block is computed on those
        rows only: the same floats for the rows that matter."""
        ops, pad, width = self.ops, self.pad, self.width
        n = len(doc)
        features = ops.asarray2i(doc.to_array(self.columns), dtype="uint64")
        margin = max(window for window, _, _ in self.blocks)
        # the padded sequence, with ``margin`` more zero rows on each side (seq2col's zeros)
        rows = np.zeros((n + 2 * (pad + margin), width), dtype="float32")
        first, last = margin, margin + n + 2 * pad  # the padded sequence's rows
        tokens = slice(first + pad, first + pad + n)
        keys = list(map(tuple, features.tolist()))
        if not self.cache.take(keys, lambda positions: self.embed(features[positions]), rows[tokens]):
            rows[tokens] = self.embed(features)
        reach = sum(window for window, _, _ in self.blocks)  # how far the blocks still see
        for window, maxout, norm in self.blocks:
            reach -= window
            lo, hi = max(first, tokens.start - reach), min(last, tokens.stop + reach)
            # seq2col: each row with the ``window`` rows before and after it
            columns = np.ndarray((hi - lo, (2 * window + 1) * width), rows.dtype, rows,
                                 (lo - window) * rows.strides[0], rows.strides)  # a view (rows overlap)
            rows[lo:hi] += norm(maxout(np.ascontiguousarray(columns)))
        Y = ops.gemm(rows[tokens], self.W, trans2=True)  # list2array >> linear
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
    probes = [nlp.make_doc(text) for text in PROBES] * 2  # the second time from the cache
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
