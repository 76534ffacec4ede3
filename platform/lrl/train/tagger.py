"""The fine-tuning loop for token classification: plain torch, in-process, one call per run.

No Ray Train here on purpose: Ray Tune function trainables call ``train_tagger`` directly
(DESIGN.md: a TorchTrainer inside a Tune function hung under ASHA), and the finetune stage runs
it inside ordinary Ray tasks. ``report`` receives each evaluation's history entry, so a Tune
trainable can pass ``tune.report`` and ASHA can stop it between evaluations.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import pyarrow as pa
import torch

from lrl.evaluate.metrics import scores_by_lang
from lrl.evaluate.predict import predict_tags
from lrl.model.freeze import freeze, param_groups
from lrl.train.align import encode, lang_tag_ids
from lrl.train.attention import set_attention
from lrl.train.finetune_config import FinetuneConfig
from lrl.train.finetune_data import is_orig, label_list, language_weights, prepare_train
from lrl.train.finetune_model import Tagger, collate
from lrl.train.schedules import build_scheduler


@dataclass
class TaggerResult:
    """What one fine-tuning run returns (kept small: it travels through Ray)."""

    dev_f1: float
    """seqeval micro span F1 on all dev sentences (strict IOB2) at the kept evaluation (the best by
    ``finetune.select_by``, which need not be the best by this figure)."""
    per_type: dict[str, dict]
    """entity type -> {"precision", "recall", "f1", "support"} at the best evaluation."""
    per_lang: dict[str, float]
    """language -> span F1 at the best evaluation."""
    history: list[dict]
    """One entry per evaluation: {"step", "epoch", "train_loss", "dev_f1", "lr", "time_s"}; ``lr`` is
    the (largest group's) learning rate the evaluated step trained with. With more than one dev
    language also ``dev_f1_lang_mean``, the mean of the per-language F1s (``select_by:
    language_mean``)."""
    model_dir: str | None
    """HF folder of the best model, if saved."""
    scores: dict = field(default_factory=dict)
    """Full ``scores_by_lang`` of the best evaluation (precision, recall, per_lang details)."""
    info: dict = field(default_factory=dict)
    """Run facts: steps, stopped_early, best_step, select_by and select_f1 (the figure that kept it),
    train rows, the chunks drawn per language, the few-shot sentences' ids, alignment statistics,
    frozen params, the attention kernel trained with."""


def language_mean_f1(scores: dict) -> float:
    """Mean of the per-language span F1s of a ``scores_by_lang`` result: every language counts once,
    however many dev entities it has."""
    per = [float(v["f1"]) for v in scores["per_lang"].values()]
    return sum(per) / len(per)


def selection_score(scores: dict, select_by: str) -> float:
    """The dev figure that early stopping, the kept evaluation and the kept seed follow
    (``finetune.select_by``): the pooled span F1, or the mean of the per-language ones."""
    mean = language_mean_f1(scores)
    # One language (per-language runs, every Tune search): the criteria must be one figure, so
    # select_by changes nothing there. Both come from the same sentences in the same order.
    if len(scores["per_lang"]) == 1 and not math.isclose(mean, scores["f1"], rel_tol=0.0, abs_tol=1e-12):
        raise AssertionError(f"one dev language but pooled F1 {scores['f1']} != language mean {mean}")
    return float(scores["f1"]) if select_by == "pooled" else mean


def pick_device(cfg: FinetuneConfig) -> torch.device:
    if cfg.device == "cuda" or (cfg.device == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def _autocast_dtype(cfg: FinetuneConfig, device: torch.device) -> torch.dtype | None:
    if cfg.precision == "bf16":
        return torch.bfloat16
    if cfg.precision == "fp16":
        if device.type != "cuda":
            raise ValueError("precision fp16 needs a GPU; use bf16 on CPU")
        return torch.float16
    return None


class _Batches:
    """Endless stream of training batches: shuffled epochs, or temperature-weighted draws."""

    def __init__(self, n: int, batch_size: int, gen: torch.Generator, weights: list[float] | None):
        self.n, self.bs, self.gen, self.weights = n, batch_size, gen, weights
        self.order: list[int] = []

    def next(self) -> list[int]:
        if len(self.order) < self.bs:
            if self.weights is None:
                self.order += torch.randperm(self.n, generator=self.gen).tolist()
            else:
                w = torch.tensor(self.weights, dtype=torch.double)
                self.order += torch.multinomial(w, self.n, replacement=True, generator=self.gen).tolist()
        out, self.order = self.order[: self.bs], self.order[self.bs:]
        return out


def _load_encoder(cfg: FinetuneConfig, model_path: str, labels: list[str], train: pa.Table, seed: int) -> Tagger:
    """The tagger on ``model_path``; ``preset:<name>`` is a fresh encoder of that size (see
    ``lrl.model.build``) with a tokenizer trained on the training tokens, built in a temporary folder."""
    if not model_path.startswith("preset:"):
        return Tagger.from_encoder(model_path, labels, cfg.head, cfg.dropout, cfg.max_length, cfg.lang_tag)
    import tempfile

    from lrl.train.finetune_scratch import build_preset_on_rows

    with tempfile.TemporaryDirectory(prefix="lrl-preset-") as tmp:
        # Positions for max_length pieces: the preset default (128) made longer chunks fail. The
        # stages' cached preset encoder (lrl.tune.splits) is built by the same function.
        path = build_preset_on_rows(tmp, model_path, [train], seed, cfg.max_length)
        return Tagger.from_encoder(path, labels, cfg.head, cfg.dropout, cfg.max_length, cfg.lang_tag)


def _counts(langs: list[str]) -> dict[str, int]:
    """Training rows per language after few-shot selection and the augmentation mix."""
    out: dict[str, int] = {}
    for lang in langs:
        out[lang] = out.get(lang, 0) + 1
    return dict(sorted(out.items()))


def _ids_by_lang(table: pa.Table) -> dict[str, list[str]]:
    """Sorted row ids per language: which original sentences a few-shot run trained on."""
    out: dict[str, list[str]] = {}
    for i, lang in zip(table.column("id").to_pylist(), table.column("lang").to_pylist()):
        out.setdefault(lang, []).append(i)
    return {lang: sorted(ids) for lang, ids in sorted(out.items())}


def _few_shot_record(k: int | dict[str, int] | None, orig: pa.Table) -> dict:
    """``few_shot_ids`` of a run's info: per language the originals few-shot chose. A mapping
    (``{ug: 10}``) cut only the languages it names: listing the others' every sentence (thousands of
    WikiANN sw ids) would read as a choice. A run with none of them (a per-language model of an
    unnamed language) trained on all, as without few-shot, and has none."""
    if k is None:
        return {}
    ids = _ids_by_lang(orig)
    if isinstance(k, dict):
        ids = {lang: v for lang, v in ids.items() if lang in k}
    return {"few_shot_ids": ids} if ids else {}


def _input_conventions(tagger: Tagger, langs: set[str]) -> dict:
    """What lrl adds to every input besides the words: the language tag token per language and the
    language's token type id. Saved with the model so that its card can tell plain transformers
    users (who otherwise feed untagged inputs the model never saw)."""
    out: dict = {"langs": sorted(langs)}  # with those without a tag token: a one-language tokenizer needs all
    if tagger.lang_tag:
        tags = {lang: lang_tag_ids(tagger.tokenizer, lang) for lang in sorted(langs)}
        out["lang_tags"] = {lang: tagger.tokenizer.convert_ids_to_tokens(ids[0]) for lang, ids in tags.items() if ids}
    if tagger.lang_types is not None:
        out["lang_type_ids"] = {lang: tagger.lang_types.get(lang, 0) for lang in sorted(langs)}
    return out


def train_tagger(cfg: FinetuneConfig, model_path: str, train: pa.Table, dev: pa.Table, *,
                 seed: int, out_dir: str | None = None,
                 report: Callable[[dict], None] | None = None,
                 labels: list[str] | None = None) -> TaggerResult:
    """Fine-tune ``model_path`` on ``train`` (NER_SCHEMA rows), select on ``dev`` F1 (pooled or the
    mean over languages, ``cfg.select_by``).

    Applies few-shot selection and the augmentation mix with ``seed``; evaluates every
    ``eval_every`` steps (default: each epoch); stops early after ``patience`` evaluations
    without improvement; restores the best weights and, with ``out_dir``, saves them there.
    """
    t0 = time.time()
    torch.manual_seed(seed)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg)
    amp = _autocast_dtype(cfg, device)
    train = prepare_train(train, cfg.few_shot, cfg.aug_ratio, seed)
    if train.num_rows == 0 or dev.num_rows == 0:
        raise ValueError(f"nothing to train on: {train.num_rows} train rows, {dev.num_rows} dev rows")
    labels = labels or label_list([train, dev])
    tagger = _load_encoder(cfg, model_path, labels, train, seed)
    frozen = freeze(tagger.model, cfg.freeze_embeddings, cfg.freeze_layers)
    tagger.to(device)
    # auto, on CPU: eager attention for bf16 and dropout drawn 3 elements per random number (a
    # MiniLM bf16 step 1.25x as fast); the saved folder names no kernel of lrl's, GPUs keep sdpa.
    kernel = set_attention(tagger.model, cfg.attention, cfg.precision, device)
    groups = param_groups(tagger.model, cfg.lr, cfg.layer_lr_decay, cfg.weight_decay, cfg.head_lr)
    if tagger.crf is not None:
        groups.append({"params": list(tagger.crf.parameters()), "lr": cfg.head_lr or cfg.lr,
                       "weight_decay": 0.0, "name": "crf"})
    opt = torch.optim.AdamW(groups, lr=cfg.lr)
    label2id = {lab: i for i, lab in enumerate(labels)}
    sents, langs = train.column("tokens").to_pylist(), train.column("lang").to_pylist()
    try:
        tag_ids = [[label2id[t] for t in tags] for tags in train.column("tags").to_pylist()]
    except KeyError as exc:
        raise ValueError(f"training tag {exc.args[0]!r} is not among the labels {labels}") from None
    chunks, stats = encode(tagger.tokenizer, sents, tag_ids, cfg.max_length, langs, cfg.lang_tag)
    steps_per_epoch = max(1, math.ceil(len(chunks) / cfg.batch_size))
    total = cfg.max_steps or max(1, math.ceil(cfg.epochs * steps_per_epoch))
    eval_every = cfg.eval_every or steps_per_epoch
    sched = build_scheduler(opt, cfg.schedule, total)
    # On the training device: a CUDA scaler on any other device is disabled (with a warning only),
    # and fp16 then stepped on unscaled gradients. Recent torch has a CPU GradScaler (tests run the
    # fp16 loop on CPU with it; users get fp16 on GPUs only, ``_autocast_dtype``).
    scaler = torch.amp.GradScaler(device.type) if amp == torch.float16 else None
    gen = torch.Generator().manual_seed(seed)
    weights = None
    if cfg.sampling_alpha != 1.0 and len(set(langs)) > 1:
        weights = language_weights([c.lang or "" for c in chunks], cfg.sampling_alpha)
    batches = _Batches(len(chunks), cfg.batch_size, gen, weights)
    dev_sents, dev_langs = dev.column("tokens").to_pylist(), dev.column("lang").to_pylist()
    dev_gold = dev.column("tags").to_pylist()
    pad = tagger.tokenizer.pad_token_id or 0
    trainable = [p for g in groups for p in g["params"]]

    history: list[dict] = []
    drawn = dict.fromkeys(sorted(set(langs)), 0)  # chunks per language the steps trained on
    best_select, best_scores, best_state, best_step, bad_evals = -1.0, {}, None, 0, 0
    loss_sum, loss_n, stopped_early, step = 0.0, 0, False, 0
    for step in range(1, total + 1):
        for m in tagger.modules():
            m.train()
        picked = [chunks[i] for i in batches.next()]
        for c in picked:
            drawn[c.lang] += 1
        batch = collate(picked, pad, device, tagger.lang_types)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = tagger.loss(batch)
        opt.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.unscale_(opt)
        else:
            loss.backward()
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(trainable, cfg.grad_clip)
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        # The rate this step used: after ``sched.step()`` the groups already hold the next step's.
        step_lr = max(g["lr"] for g in opt.param_groups)
        sched.step()
        loss_sum, loss_n = loss_sum + float(loss.detach()), loss_n + 1
        if step % eval_every and step != total:
            continue
        pred, _ = predict_tags(tagger, dev_sents, dev_langs, cfg.eval_batch_size, device, amp)
        scores = scores_by_lang(dev_gold, pred, dev_langs)
        select = selection_score(scores, cfg.select_by)
        entry = {"step": step, "epoch": round(step / steps_per_epoch, 4),
                 "train_loss": loss_sum / max(loss_n, 1), "dev_f1": scores["f1"],
                 "lr": step_lr, "time_s": round(time.time() - t0, 3)}
        if len(scores["per_lang"]) > 1:  # joint: what language_mean follows, shown under pooled too
            entry["dev_f1_lang_mean"] = language_mean_f1(scores)
        history.append(entry)
        loss_sum, loss_n = 0.0, 0
        if select > best_select:
            best_select, best_scores, best_step, bad_evals = select, scores, step, 0
            best_state = [{k: v.detach().to("cpu", copy=True) for k, v in m.state_dict().items()}
                          for m in tagger.modules()]
        else:
            bad_evals += 1
        if report is not None:  # with the run's length: a trial stopped at its last evaluation ran in full
            report({**entry, "total_steps": total})
        if cfg.patience is not None and bad_evals >= cfg.patience and step != total:
            stopped_early = True
            break
    if best_state is not None:
        for m, state in zip(tagger.modules(), best_state):
            m.load_state_dict(state)
    best_f1 = float(best_scores["f1"])  # pooled, at the kept evaluation (every run evaluates at least once)
    orig = train.filter(is_orig(train))
    info = {"steps": step, "total_steps": total, "stopped_early": stopped_early, "best_step": best_step,
            "select_by": cfg.select_by, "select_f1": best_select,
            "train_rows": train.num_rows, "train_rows_per_lang": _counts(langs),
            # Original sentences apart from generated ones: what ``few_shot: k`` means (k per language).
            "train_orig_rows_per_lang": _counts(orig.column("lang").to_pylist()),
            # Which k sentences few_shot chose (the seed's choice), and what the steps drew: with
            # few steps a joint run can leave a small language out of every batch.
            **_few_shot_record(cfg.few_shot, orig),
            "train_chunks": len(chunks), "drawn_chunks_per_lang": drawn,
            "frozen_params": frozen, "device": device.type, "precision": cfg.precision, "attention": kernel,
            "align": stats.as_dict(), "seed": seed}
    model_dir = None
    if out_dir is not None:
        tagger.to(torch.device("cpu"))
        tagger.save(out_dir, {"dev_f1": best_f1, "select_by": cfg.select_by, "select_f1": best_select,
                              "seed": seed, "best_step": best_step,
                              **_input_conventions(tagger, set(langs) | set(dev_langs))})
        model_dir = out_dir
    return TaggerResult(
        dev_f1=best_f1, per_type=best_scores.get("per_type", {}),
        per_lang={k: v["f1"] for k, v in best_scores.get("per_lang", {}).items()},
        history=history, model_dir=model_dir, scores=best_scores, info=info)
