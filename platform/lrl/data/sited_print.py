"""What names a model or data input of a finetune, tune or ``lrl evaluate`` output, now that the
setting's path no longer does (``lrl.train.finetune_names.by_content``).

``input_print`` names a local folder by its content and a folder inside a finished stage output by
that output's name, which identify it wherever it lies. A remote folder elsewhere it names by its
files' sizes and mtimes only: encoders of one architecture have files of equal sizes, and an
``aws s3 sync`` that uploads two of them in the same second (S3 keeps mtimes to the second) gave
two different models the same print, so the second one's finetune or evaluation reused the first's
output. Such an input keeps its path beside the print.
"""

from __future__ import annotations

import re

from lrl.data.files import fingerprint, is_uri
from lrl.data.output import input_print

#: How ``input_print`` names a path inside a finished stage output: ``<stage>-<12 hex>[/...]``.
#: Its fingerprints are 16 hex digits (a folder, a pattern) or ``<size>-<mtime>`` (a remote file).
_IN_STAGE = re.compile(r"[a-z_]+-[0-9a-f]{12}(/.*)?")


def sited_print(path: str, content: object = None) -> object:
    """``input_print(path)`` (or ``content``, the input's own print, when given: a data file's
    ``fingerprint``), with ``path`` beside it where that print is only sizes and mtimes."""
    if content is None:
        content = input_print(path)
    if is_uri(path) and not (isinstance(content, str) and _IN_STAGE.fullmatch(content)):
        return [path, content]
    return content


def data_print(path: str) -> object:
    """A data file's or folder's print, with its path when on an object store (``sited_print``)."""
    return sited_print(path, fingerprint(path))


__all__ = ["sited_print", "data_print"]
