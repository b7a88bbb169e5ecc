"""Measuring built programs: runners (native, QEMU), start-up, memory, functional checks.

A sample is one start of the program: spawn to exit for a CLI, spawn to the first
healthy answer for a server, with the kernel's peak RSS (wait4 rusage) for that start.
"""

from .launcher import Launch, launcher_path
from .runners import Runner, runner_for
from .samples import CheckFailure, Sample, check_and_sample, take_sample
from .stats import summarize

__all__ = [
    "CheckFailure",
    "Launch",
    "Runner",
    "Sample",
    "check_and_sample",
    "launcher_path",
    "runner_for",
    "summarize",
    "take_sample",
]
