"""A linear-chain CRF over word-level emissions: negative log-likelihood and Viterbi decoding.

Used as an optional head on top of a token classifier: the encoder's logits at each word's first
piece are the emissions, so the CRF sees one position per original token. Kept small on purpose:
transition scores plus start/end scores, batched forward algorithm, batched Viterbi.

With BIO labels (``O``, ``B-X``, ``I-X``) the transitions that make no span are closed: ``I-X``
only after ``B-X`` or ``I-X``, never first. Unconstrained, Viterbi put ``I-`` after ``O`` (a CRF
on WikiANN ug dev: 51.8 span F1 strict, 49.5 in seqeval's default mode, which reads a lone
``I-`` as a span). Closed in training as well, so that the likelihood is over the sequences the
decoder can give. A chunk that continues a long sentence (cut at word boundaries by
``lrl.train.align``) may start inside an entity: ``open_start`` marks such rows, which may start
with any label. Closed there too, the gold ``I-X`` start lay outside the likelihood's partition
and the NLL had no floor (WikiANN ug in 12-piece chunks: 3.7, -6.9, -22.9 at steps 10, 20, 30),
and the decoder split every entity cut by a chunk boundary in two. Prediction does not decode
chunks: ``decode_rows`` takes each sentence's word emissions from all its chunks as one row, so
the transitions hold across chunk boundaries and only a sentence's first word is a start.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

#: Part of the finetune and tune output hashes of CRF heads only (``head_version``): 2 = BIO
#: transitions closed in training; 3 = chunks continuing a sentence start open (``open_start``),
#: so that CRF models trained before are trained again.
CRF_VERSION = 3


def head_version(head: str) -> dict[str, int]:
    """What a finished output's hash adds for ``finetune.head``: nothing for the linear head
    (its outputs stay reusable), the CRF's version for a CRF."""
    return {"crf_version": CRF_VERSION} if head == "crf" else {}


#: Added to a closed transition's score: exp(-1e4) is 0 in fp32, and unlike -inf it keeps
#: logsumexp and its gradient finite.
CLOSED = -1e4


def closed_transitions(labels: list[str], num_labels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(start [L], trans [from, to]) masks of the transitions no BIO sequence has; all open when
    the labels are not BIO (one label per token, e.g. UPOS) or not given."""
    start = torch.zeros(num_labels, dtype=torch.bool)
    trans = torch.zeros(num_labels, num_labels, dtype=torch.bool)
    if len(labels) != num_labels or not all(x == "O" or x[:2] in ("B-", "I-") for x in labels):
        return start, trans
    for j, to in enumerate(labels):
        if to.startswith("I-"):
            start[j] = True
            trans[:, j] = torch.tensor([frm[2:] != to[2:] or frm == "O" for frm in labels])
    return start, trans


class CRF(nn.Module):
    """Transition scores between labels; ``mask`` marks real positions (left-aligned)."""

    def __init__(self, num_labels: int, labels: list[str] | None = None):
        super().__init__()
        self.num_labels = num_labels
        self.start = nn.Parameter(torch.zeros(num_labels))
        self.end = nn.Parameter(torch.zeros(num_labels))
        self.trans = nn.Parameter(torch.zeros(num_labels, num_labels))  # [from, to]
        start_closed, trans_closed = closed_transitions(labels or [], num_labels)
        # Not in the state dict: rebuilt from the labels, so folders saved before still load.
        self.register_buffer("start_penalty", start_closed.float() * CLOSED, persistent=False)
        self.register_buffer("trans_penalty", trans_closed.float() * CLOSED, persistent=False)

    def _start(self, open_start: torch.Tensor | None) -> torch.Tensor:
        """Start scores [L], or [B, L] when ``open_start`` [B] marks rows that may start anywhere."""
        if open_start is None:
            return self.start + self.start_penalty
        return self.start + self.start_penalty * (~open_start.bool()).unsqueeze(1).to(self.start.dtype)

    def _trans(self) -> torch.Tensor:
        return self.trans + self.trans_penalty

    def nll(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor,
            open_start: torch.Tensor | None = None) -> torch.Tensor:
        """Mean negative log-likelihood of ``tags`` [B, T] given ``emissions`` [B, T, L];
        ``open_start`` [B]: rows continuing a sentence (any first label)."""
        emissions = emissions.float()
        mask = mask.bool()
        return (self._log_partition(emissions, mask, open_start) - self._score(emissions, tags, mask)).mean()

    def _score(self, em: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b = torch.arange(em.shape[0], device=em.device)
        score = self.start[tags[:, 0]] + em[b, 0, tags[:, 0]]
        for t in range(1, em.shape[1]):
            step = self.trans[tags[:, t - 1], tags[:, t]] + em[b, t, tags[:, t]]
            score = score + step * mask[:, t]
        last = tags[b, mask.sum(1) - 1]
        return score + self.end[last]

    def _log_partition(self, em: torch.Tensor, mask: torch.Tensor, open_start: torch.Tensor | None) -> torch.Tensor:
        alpha = self._start(open_start) + em[:, 0]  # [B, L]
        trans = self._trans()
        for t in range(1, em.shape[1]):
            nxt = torch.logsumexp(alpha.unsqueeze(2) + trans + em[:, t].unsqueeze(1), dim=1)
            alpha = torch.where(mask[:, t].unsqueeze(1), nxt, alpha)
        return torch.logsumexp(alpha + self.end, dim=1)

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor,
               open_start: torch.Tensor | None = None) -> list[list[int]]:
        """Best label sequence per row (Viterbi), each as long as its mask (``open_start`` as in ``nll``)."""
        em = emissions.float()
        mask = mask.bool()
        score = self._start(open_start) + em[:, 0]
        trans = self._trans()
        back = []
        for t in range(1, em.shape[1]):
            total = score.unsqueeze(2) + trans  # [B, from, to]
            best, idx = total.max(dim=1)
            nxt = best + em[:, t]
            score = torch.where(mask[:, t].unsqueeze(1), nxt, score)
            back.append(idx)
        score = score + self.end
        # Backtrack on the host from one copy: indexing device tensors word by word cost one GPU
        # sync per word (int() of a CUDA scalar waits for the device).
        lengths = mask.sum(1).tolist()
        last = score.argmax(1).tolist()
        back_host = torch.stack(back).tolist() if back else []  # [T-1][B][to] -> best "from"
        out = []
        for i, n in enumerate(lengths):
            tag = last[i]
            path = [tag]
            for t in range(n - 1, 0, -1):
                tag = back_host[t - 1][i][tag]
                path.append(tag)
            out.append(path[::-1])
        return out

    @torch.no_grad()
    def decode_rows(self, rows: Sequence[torch.Tensor], batch_size: int = 64) -> list[list[int]]:
        """Best label sequence of each row of emissions (``[n_i, L]``, one whole sentence each:
        its first word under the closed start), batched by length so that padding stays small.

        Chunks of a long sentence decoded one by one could join into no valid sequence: a chunk
        continuing a sentence starts open, so it began with ``I-X`` after a chunk that ended in
        ``O`` (WikiANN ug dev, 163 pieces in 128-piece chunks). An empty row gets an empty path."""
        out: list[list[int]] = [[] for _ in rows]
        order = sorted((i for i, r in enumerate(rows) if r.shape[0]), key=lambda i: rows[i].shape[0])
        for s in range(0, len(order), batch_size):
            idx = order[s: s + batch_size]
            em = nn.utils.rnn.pad_sequence([rows[i] for i in idx], batch_first=True)
            lengths = torch.tensor([rows[i].shape[0] for i in idx], device=em.device)
            mask = torch.arange(em.shape[1], device=em.device).unsqueeze(0) < lengths.unsqueeze(1)
            for i, path in zip(idx, self.decode(em, mask)):
                out[i] = path
        return out
