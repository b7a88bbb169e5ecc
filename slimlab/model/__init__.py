"""The sweep's model: axes declared once, the spec, targets, profiles, post-link chains,
variants and the plan. Pure: importing or using it runs no tool, reads no PATH and calls
no network; it imports nothing of slimlab but ``errors`` (and ``workloads`` to resolve
a workload's name)."""

from .axes import AXES, BY_COLUMN, BY_KEY, COLUMNS, Axis, axis
from .chain import CHAINS, STEPS, Chain, Step, get_chain
from .profile import BUILTIN_PROFILES, Profile, custom_profile
from .spec import SETTINGS, SamplingRule, SweepSpec
from .target import TARGETS, Target, target_for_elf_machine
from .variant import Plan, Variant, expand, plan

__all__ = [
    "AXES", "BUILTIN_PROFILES", "BY_COLUMN", "BY_KEY", "CHAINS", "COLUMNS", "SETTINGS", "STEPS", "TARGETS",
    "Axis", "Chain", "Plan", "Profile", "SamplingRule", "Step", "SweepSpec", "Target", "Variant", "axis",
    "custom_profile", "expand", "get_chain", "plan", "target_for_elf_machine",
]
