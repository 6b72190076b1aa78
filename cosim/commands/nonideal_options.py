"""The non-ideality flags of `cosim simulate` and `cosim sweep` (argparse).
"""

from __future__ import annotations

import argparse

from cosim.mapping.nonideal import STUCK_KINDS, NonIdeal


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The non-ideality flags of `cosim simulate` and `cosim sweep`."""
    group = parser.add_argument_group("device non-idealities (mapping stage, seeded by --seed)")
    group.add_argument("--states", type=int, metavar="N", help="conductance levels per device, 2..64")
    group.add_argument("--stuck-at-rate", type=float, default=0.0, metavar="P", help="fraction stuck, 0..0.25")
    group.add_argument("--stuck-at", choices=STUCK_KINDS, default="hrs", help="stuck at HRS, LRS or both")
    group.add_argument("--variability-sigma", type=float, default=0.0, metavar="S",
                       help="lognormal G*exp(theta), theta~N(0,S^2), 0..1")
    group.add_argument("--defect-alpha", type=float, default=0.0, metavar="A",
                       help="defect percent (fraction) of seed 001: A*B stuck, A*(1-B) with sigma in 0.6..1.0")
    group.add_argument("--defect-beta", type=float, default=0.5, metavar="B", help="stuck share of defects (0.5)")


def from_arguments(args: argparse.Namespace) -> NonIdeal:
    """NonIdeal from parsed `add_arguments` flags."""
    return NonIdeal(states=args.states, stuck_at_rate=args.stuck_at_rate, stuck_at=args.stuck_at,
                    variability_sigma=args.variability_sigma, defect_alpha=args.defect_alpha,
                    defect_beta=args.defect_beta)
