"""Training progress for the Trainer-based jobs (GRPO, SFT): a bar on a terminal, plain lines in a log."""

from __future__ import annotations

import time

from transformers import TrainerCallback


class RichProgress(TrainerCallback):
    """A rich progress bar over optimizer steps, showing the latest mean reward (or loss, for
    SFT). When stderr is not a terminal (a log file, CI) it prints a plain line about every
    ``1/lines`` of the run instead, so long jobs stay observable."""

    def __init__(self, desc: str = "GRPO", lines: int = 20):
        self.desc = desc
        self.lines = lines
        self.bar = None
        self.plain = None
        self.info = ""

    def on_train_begin(self, args, state, control, **kw):
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

        console = Console(stderr=True)
        self.t0 = time.perf_counter()
        if not console.is_terminal:
            self.plain, self.every = console, max(1, state.max_steps // self.lines)
            self.next_line = self.every
            return
        self.bar = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"), TimeElapsedColumn(), TimeRemainingColumn(), TextColumn("{task.fields[info]}"), console=console, transient=True)
        self.bar.start()
        self.task = self.bar.add_task(self.desc, total=state.max_steps, info="")

    def on_log(self, args, state, control, logs=None, **kw):
        key = next((k for k in ("reward", "loss") if logs and k in logs), None)
        if key:
            self.info = f"{key} {float(logs[key]):.3f}"
            if self.bar is not None:
                self.bar.update(self.task, info=self.info)
            elif self.plain is not None and state.global_step >= self.next_line:
                self.next_line = state.global_step + self.every
                self.plain.print(f"{self.desc} step {state.global_step}/{state.max_steps} {self.info} ({time.perf_counter() - self.t0:.0f} s)", highlight=False)

    def on_step_end(self, args, state, control, **kw):
        if self.bar is not None:
            self.bar.update(self.task, completed=state.global_step)

    def on_train_end(self, args, state, control, **kw):
        if self.bar is not None:
            self.bar.stop()
            self.bar = None
        self.plain = None
