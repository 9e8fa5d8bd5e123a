"""An encoder-decoder (seq2seq) model with additive attention (Bahdanau et al., 2015).

The encoder, a GRU, reads the source and keeps its state at every position:
encoded (B, S, H). The decoder, a GRUCell, writes the target one token at a time; before
each step it *looks back* at the whole source through additive attention:

    context_t, weights_t = attention(query = h_{t-1}, keys = values = encoded)
    h_t      = GRUCell([embed(y_{t-1}); context_t], h_{t-1})
    logits_t = Linear([h_t; context_t])

weights_t (B, S) says which source positions step t read, the heat map that shows what
the model learned. For reversing a string it is a band along the anti-diagonal, one
position late: the encoder state at position j+1 still remembers the token at j.

Decoding: ``greedy_decode`` takes the most likely token at every step, for a whole batch;
``beam_search`` keeps the best few prefixes of one source's output (``tinylm.decoding``).
"""
from __future__ import annotations

from .. import backend
from .. import functional as F
from ..decoding import Hypothesis, beam_search
from ..ops import ShapeError
from ..tensor import Tensor, concat, no_grad, stack
from .attention import AdditiveAttention
from .linear import Embedding, Linear
from .module import Module
from .recurrent import GRU, GRUCell


class Seq2Seq(Module):
    """Source ids (B, S) -> target logits (B, T, target_vocab), with attention.

    ``forward(source, target_in)`` trains with teacher forcing: target_in is the target
    shifted right (a start token first), and the logits predict the target itself.
    ``greedy_decode`` and ``beam_search`` generate without it.
    """

    def __init__(self, source_vocab: int, target_vocab: int, embed_dim: int = 32, hidden_size: int = 64, dtype=None, device: str = "cpu"):
        self.hidden_size = hidden_size
        self.source_embedding = Embedding(source_vocab, embed_dim, dtype=dtype, device=device)
        self.encoder = GRU(embed_dim, hidden_size, dtype=dtype, device=device)
        self.target_embedding = Embedding(target_vocab, embed_dim, dtype=dtype, device=device)
        self.attention = AdditiveAttention(hidden_size, hidden_size, hidden_size, dtype=dtype, device=device)
        self.decoder = GRUCell(embed_dim + hidden_size, hidden_size, dtype=dtype, device=device)
        self.output = Linear(2 * hidden_size, target_vocab, dtype=dtype, device=device)

    def encode(self, source, source_lengths=None) -> tuple[Tensor, Tensor, Tensor, object]:
        """Run the encoder once: (encoded (B, S, H), projected keys, first decoder state (B, H), mask).

        ``source_lengths`` (B,) for a padded batch: the padding is neither encoded into the
        final state nor attended to (mask (B, 1, S), True = a real token).
        """
        if len(tuple(source.shape)) != 2:
            raise ShapeError(f"Seq2Seq: expected source ids of shape (batch, length), got shape {tuple(source.shape)}")
        encoded, h_n = self.encoder(self.source_embedding(source), lengths=source_lengths)
        mask = None
        if source_lengths is not None:
            xp = backend.array_module(encoded.data)
            lengths = xp.asarray(source_lengths.data if isinstance(source_lengths, Tensor) else source_lengths)
            mask = (xp.arange(encoded.shape[1]) < lengths[:, None])[:, None, :]
        return encoded, self.attention.project_keys(encoded), h_n[-1], mask

    def decode_step(self, tokens, h: Tensor, encoded: Tensor, projected_keys: Tensor, mask=None) -> tuple[Tensor, Tensor, Tensor]:
        """One decoder step from the previous tokens (B,): (logits (B, V), new h (B, H), weights (B, S))."""
        context, weights = self.attention.attend(h.reshape(h.shape[0], 1, self.hidden_size), projected_keys, encoded, mask)
        context = context.reshape(h.shape)
        h = self.decoder(concat([self.target_embedding(tokens), context], axis=1), h)
        logits = self.output(concat([h, context], axis=1))
        return logits, h, weights.reshape(weights.shape[0], weights.shape[2])

    def forward(self, source, target_in, source_lengths=None) -> Tensor:
        """Teacher forcing: logits (B, T, target_vocab) for target_in (B, T)."""
        encoded, keys, h, mask = self.encode(source, source_lengths)
        target_in = target_in if isinstance(target_in, Tensor) else Tensor(target_in)
        logits = []
        for t in range(target_in.shape[1]):
            step_logits, h, _ = self.decode_step(target_in[:, t], h, encoded, keys, mask)
            logits.append(step_logits)
        return stack(logits, axis=1)

    def greedy_decode(self, source, start_id: int, length: int, source_lengths=None) -> tuple[Tensor, Tensor]:
        """Generate ``length`` tokens, each the most likely one: (tokens (B, length), weights (B, length, S)).

        ``weights[b, t]`` is the attention of output step t over the source: plot it as a
        heat map (rows: output steps, columns: source positions).
        """
        with no_grad():
            encoded, keys, h, mask = self.encode(source, source_lengths)
            xp = backend.array_module(encoded.data)
            tokens = Tensor(xp.full((encoded.shape[0],), start_id, dtype=xp.int64))
            outputs, weights = [], []
            for _ in range(length):
                logits, h, step_weights = self.decode_step(tokens, h, encoded, keys, mask)
                tokens = Tensor(logits.data.argmax(axis=1))
                outputs.append(tokens)
                weights.append(step_weights)
            return stack(outputs, axis=1), stack(weights, axis=1)

    def beam_search(
        self,
        source,
        start_id: int,
        end_id: int,
        beam_width: int = 4,
        max_length: int = 50,
        length_penalty: float = 0.0,
    ) -> list[Hypothesis]:
        """Beam search (``tinylm.decoding.beam_search``) for one source (1, S): the hypotheses, best first.

        Each hypothesis holds the generated tokens (without the start token, ending in
        ``end_id`` if it finished) and their log-probability. ``beam_width=1`` is greedy
        decoding that stops at ``end_id``.
        """
        if len(tuple(source.shape)) != 2 or source.shape[0] != 1:
            raise ShapeError(
                f"Seq2Seq.beam_search decodes one source at a time: expected source ids of shape (1, length), "
                f"got shape {tuple(source.shape)}"
            )
        with no_grad():
            encoded, keys, h, _ = self.encode(source)

            def step(tokens, state):
                h, encoded, keys = state
                logits, h, _ = self.decode_step(tokens, h, encoded, keys)
                return F.log_softmax(logits, axis=-1).numpy(), (h, encoded, keys)

            return beam_search(step, (h, encoded, keys), start_id, end_id, beam_width, max_length, length_penalty)
