"""`planner sizes` as text or JSON."""

from __future__ import annotations

import json

from planner.report.escape import visible
from planner.sizes import SizesAnswer

FIX_LABELS = {"torch_export": "torch.export", "monai": "MONAI", "pad_to": "pad to"}


def render_sizes(answer: SizesAnswer, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(answer.to_dict(), allow_nan=False) + "\n"
    lines = [f"{visible(answer.spec)}: input sizes accepted"]
    for group in answer.groups:
        axes = ", ".join(map(str, group.axes))
        together = " (together: square inputs)" if len(group.axes) > 1 else ""
        proof = "proven for every size (Z3)" if group.proof == "z3" else f"checked one by one over 1..{group.checked}"
        lines.append(f"  axis {axes}{together}: {group.form.text}  [{proof}]")
        if group.written is not None and not group.form.accepts(group.written):
            lines.append(f"    the spec's size {group.written} is not accepted")
        lines += [f"    {FIX_LABELS[k]}: {v}" for k, v in group.fixes.items()]
    if answer.tied:
        lines.append(f"  axes are tied: {visible(answer.tied)}")
    return "\n".join(lines) + "\n"
