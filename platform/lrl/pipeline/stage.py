"""The contract between stages and the pipeline runner.

Every stage exposes ``run_<stage>(ctx: StageContext) -> str``: it reads its inputs (from its config
section, or from ``ctx.upstream`` when the config leaves them unset), writes one ``StageOutput``
folder (skipping all work when that folder is already finished) and returns the folder's path.
The CLI command of a stage and ``lrl run`` call the same function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lrl.job import JobConfig


@dataclass(frozen=True)
class StageContext:
    """What a stage needs to run: the job config and the output folders of earlier stages."""

    cfg: JobConfig
    upstream: dict[str, str] = field(default_factory=dict)
    """Finished output folders of earlier stages by stage name (``generate``, ``tokenizer``,
    ``pretrain``, ``finetune``, ``tune``, ``evaluate``)."""

    def need(self, stage: str, configured: str | None = None) -> str:
        """The configured path if set, else the upstream output of ``stage``, else a clear error."""
        if configured:
            return configured
        if stage in self.upstream:
            return self.upstream[stage]
        raise ValueError(f"this stage needs the output of '{stage}': run it first or set its path in the config")
