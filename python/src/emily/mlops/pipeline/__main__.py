"""``python -m emily.mlops.pipeline <stage>``: what DVC's ``cmd`` runs. A failure is one line on
stderr naming the field and row (exit code 1), so ``dvc repro`` shows why it stopped."""

from __future__ import annotations

import sys

from emily.errors import EmilyError
from emily.mlops.pipeline.layout import Layout
from emily.mlops.pipeline.stages import STAGES


def main(argv: list[str]) -> int:
    if len(argv) != 1 or argv[0] not in STAGES:
        print(f"usage: python -m emily.mlops.pipeline {{{','.join(STAGES)}}}", file=sys.stderr)
        return 2
    try:
        STAGES[argv[0]](Layout.here())
    except EmilyError as exc:
        print(f"error: {argv[0]}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
