"""Measuring built programs: runners (native, QEMU), start-up, memory, functional checks.

A sample is one start of the program: spawn to exit for a CLI, spawn to the first
healthy answer for a server, with the kernel's peak RSS (wait4 rusage) for that start.
"""

from .contain import Limits
from .contain import probe as containment_probe
from .contain import unlimited_warning
from .launcher import Launch, available_cpus, calibrate_overhead, check_cpu, launcher_path, noop_path, run_starts
from .runners import LauncherRunner, Runner, runner_for
from .samples import CheckFailure, Sample, check_and_sample, take_sample, take_samples
from .stats import summarize

__all__ = [
    "CheckFailure",
    "Launch",
    "LauncherRunner",
    "Limits",
    "Runner",
    "Sample",
    "available_cpus",
    "calibrate_overhead",
    "check_and_sample",
    "check_cpu",
    "containment_probe",
    "launcher_path",
    "noop_path",
    "run_starts",
    "runner_for",
    "summarize",
    "take_sample",
    "take_samples",
    "unlimited_warning",
]
