"""The permission calculator: octal <-> rwx, lesson 04."""


from __future__ import annotations

import html
import re
from typing import Sequence

from course.widgets._render import _display, headless

_WHO = ("owner", "group", "others")
_WHAT = (("r", "read"), ("w", "write"), ("x", "execute"))


def _octal_digits(mode: str | int) -> str:
    if isinstance(mode, int):
        if not 0 <= mode <= 0o777:
            raise ValueError(f"mode {mode:o} is outside 000-777: use three octal digits, like 755 or 640")
        return f"{mode:03o}"
    text = str(mode).strip().lower().removeprefix("0o")
    if len(text) == 4 and text[0] == "0":
        text = text[1:]
    if not re.fullmatch(r"[0-7]{3}", text):
        raise ValueError(f"{mode!r} is not an octal mode: use three digits 0-7, like 755 or 640")
    return text


def octal_to_symbolic(mode: str | int) -> str:
    """'755' -> 'rwxr-xr-x'."""
    out = []
    for digit in _octal_digits(mode):
        d = int(digit)
        out.append("".join(letter if d & bit else "-" for (letter, _), bit in zip(_WHAT, (4, 2, 1))))
    return "".join(out)


def symbolic_to_octal(symbolic: str) -> str:
    """'rwxr-xr-x' (or 'drwxr-xr-x' as `ls -l` shows it) -> '755'."""
    text = symbolic.strip()
    if len(text) == 10:
        text = text[1:]  # the file type `ls -l` puts first
    if not re.fullmatch(r"([r-][w-][x-]){3}", text):
        raise ValueError(f"{symbolic!r} is not a permission string: nine characters like rwxr-x---")
    digits = []
    for i in range(0, 9, 3):
        digits.append(str(sum(bit for ch, bit in zip(text[i:i + 3], (4, 2, 1)) if ch != "-")))
    return "".join(digits)


def explain_mode(mode: str | int) -> list[str]:
    """One line per class of user: what they may do."""
    sym = octal_to_symbolic(mode)
    lines = []
    for who, triple in zip(_WHO, (sym[0:3], sym[3:6], sym[6:9])):
        may = [word for (letter, word), ch in zip(_WHAT, triple) if ch == letter]
        lines.append(f"{who:<6} {triple}  {', '.join(may) if may else 'nothing'}")
    return lines


def chmod_symbolic(mode: str | int) -> str:
    """'750' -> 'u=rwx,g=rx,o=' (the same mode in chmod's symbolic form)."""
    sym = octal_to_symbolic(mode)
    return ",".join(f"{c}={sym[i:i + 3].replace('-', '')}" for c, i in zip("ugo", (0, 3, 6)))


def permission_text(mode: str | int) -> str:
    digits = _octal_digits(mode)
    return "\n".join([f"{digits} = {octal_to_symbolic(digits)}   chmod {digits} FILE  ==  chmod "
                      f"{chmod_symbolic(digits)} FILE"] + [f"  {line}" for line in explain_mode(digits)])


def permission_calculator(initial: str | int = "755", examples: Sequence[str] = ("644", "600", "750")) -> None:
    """Tick boxes or type a number: the octal mode, its rwx form and what each class of user may do."""
    if headless():
        for mode in (initial, *examples):
            print(permission_text(mode) + "\n")
    else:
        _display(permission_widget(initial))


def permission_widget(initial: str | int = "755"):
    import ipywidgets as w

    digits = _octal_digits(initial)
    octal = w.Text(value=digits, description="octal", layout=w.Layout(width="160px"))
    boxes = [[w.Checkbox(description=word, indent=False, layout=w.Layout(width="90px")) for _, word in _WHAT]
             for _ in _WHO]
    out = w.HTML()
    syncing = False

    def paint(mode: str) -> None:
        lines = "<br>".join(html.escape(x) for x in explain_mode(mode))
        out.value = (f"<code style='font-size:14px'>-{octal_to_symbolic(mode)}</code> "
                     f"&nbsp; <code>chmod {mode} FILE</code> = <code>chmod {chmod_symbolic(mode)} FILE</code>"
                     f"<div style='font-family:monospace;white-space:pre;margin-top:4px'>{lines}</div>")

    def from_text(_=None):
        nonlocal syncing
        if syncing:
            return
        try:
            mode = _octal_digits(octal.value)
        except ValueError as exc:
            out.value = f"<span style='color:#c0392b'>{html.escape(str(exc))}</span>"
            return
        syncing = True
        sym = octal_to_symbolic(mode)
        for i, row in enumerate(boxes):
            for j, box in enumerate(row):
                box.value = sym[3 * i + j] != "-"
        syncing = False
        paint(mode)

    def from_boxes(_=None):
        nonlocal syncing
        if syncing:
            return
        sym = "".join(letter if box.value else "-" for row in boxes for (letter, _), box in zip(_WHAT, row))
        mode = symbolic_to_octal(sym)
        syncing = True
        octal.value = mode
        syncing = False
        paint(mode)

    octal.observe(from_text, names="value")
    for row in boxes:
        for box in row:
            box.observe(from_boxes, names="value")
    from_text()
    grid = [w.HBox([w.Label(who, layout=w.Layout(width="70px"))] + row) for who, row in zip(_WHO, boxes)]
    return w.VBox([octal, *grid, out])
