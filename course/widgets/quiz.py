"""Self-checks and quizzes."""


from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Sequence

from course.widgets._render import _display, headless


@dataclass(frozen=True)
class Question:
    prompt: str
    options: tuple[str, ...]
    answer: int  # index into options
    explanation: str

    def __post_init__(self) -> None:
        if not 0 <= self.answer < len(self.options):
            raise ValueError(f"answer {self.answer} is not one of the {len(self.options)} options of {self.prompt!r}")

    def feedback(self, choice: int | None) -> tuple[bool, str]:
        if choice is None:
            return False, "Pick an answer first."
        right = choice == self.answer
        return right, ("Right. " if right else f"Not quite: the answer is “{self.options[self.answer]}”. ") \
            + self.explanation


def quiz_text(questions: Sequence[Question], title: str) -> str:
    out = [title]
    for n, q in enumerate(questions, 1):
        out.append(f"\n{n}. {q.prompt}")
        out += [f"   ({chr(97 + i)}) {o}" for i, o in enumerate(q.options)]
        out.append(f"   answer: ({chr(97 + q.answer)}) — {q.explanation}")
    return "\n".join(out)


def self_check(questions: Sequence[Question], title: str = "Self-check") -> None:
    """Multiple-choice questions with immediate feedback (answers printed when headless)."""
    if headless():
        print(quiz_text(questions, title))
    else:
        _display(quiz_widget(questions, title))


def quiz_widget(questions: Sequence[Question], title: str = "Self-check"):
    import ipywidgets as w

    blocks = [w.HTML(f"<h4>{html.escape(title)}</h4>")]
    score = w.HTML()
    results: dict[int, bool] = {}

    for n, q in enumerate(questions):
        choice = w.RadioButtons(options=[(o, i) for i, o in enumerate(q.options)], value=None,
                                layout=w.Layout(width="auto"))
        feedback = w.HTML()
        button = w.Button(description="Check", button_style="primary")

        def check(_, q=q, choice=choice, feedback=feedback, n=n):
            right, text = q.feedback(choice.value)
            if choice.value is not None:
                results[n] = right
            color = "#27ae60" if right else "#c0392b"
            feedback.value = f"<span style='color:{color}'>{html.escape(text)}</span>"
            score.value = f"<b>{sum(results.values())} / {len(questions)}</b> right so far"

        button.on_click(check)
        blocks += [w.HTML(f"<b>{n + 1}. {html.escape(q.prompt)}</b>"), choice, w.HBox([button, feedback])]
    return w.VBox(blocks + [score])
