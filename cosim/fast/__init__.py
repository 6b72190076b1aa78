"""Fast tile solver: exact wire IR drop as a per-tile transfer matrix.

The read path of a tile with frozen device states is linear in the row
voltages, so one factorisation gives its transfer matrix T (R x C, S) and
every batch after that is a matrix multiply: ``current = v_dac @ T`` (A).
The circuit is the one of `cosim.spice.ngspice_netlist.tile_netlist` (docs/architecture.md, "Circuit
conventions"); with ``r_wire = 0`` the wire nodes of a row (a column) merge
into one node, with ``r_driver = 0`` the DAC drives the row's first node.

Four ways to solve a tile (``nonlinear=``):

- 'linear': the transfer matrix. Exact for ``access='none'``. With the
  access NMOS each cell becomes its memristor in series with an effective
  access resistance: with a calibration file (`cosim.analysis.nmos_calibration`), one fitted
  for positive and one for negative reads, applied as
  ``max(v, 0) @ T_pos + min(v, 0) @ T_neg`` (two matrix multiplies);
  without one, the triode small-signal resistance of the model card.
- 'newton': the exact DC operating point with the level-1 access NMOS of
  models/nmos_access.lib (`cosim.core.peripherals.nmos_level1_current`), gmin
  included as ngspice has it. With wires, drivers and method 'structured'
  (what 'auto' picks up to a 4 GiB factor), whole batches by
  `cosim.fast.batched_newton`: the triode law in closed form per cell and
  fixed-point steps on the factored small-signal network as batched BLAS-3
  products, per-vector convergence masks (4-8 steps to 1e-10). With
  r_driver = 0 the chord method on the structured factor, with 'iterative'
  on the chains (CG). With method 'splu' (or r_wire = 0), a full Newton per
  input vector, the Jacobian of all cells re-factored by sparse LU at every
  step. All match ngspice `.op` to ~1e-11.
- 'corrected': the small-signal transfer plus batched correction terms for
  the access NMOS (`cosim.fast.corrected`), within 1e-4 of 'newton' at a
  fraction of its cost; what `cosim.convert` uses for 1T1R tiles.
- 'auto': 'linear' when the tile is linear (no access NMOS) or a calibration
  is given, 'newton' otherwise.

Two transfer-matrix solvers (``method=``), equal to ~1e-14:

- 'structured' (default): unknowns ordered row by row, each row's
  tridiagonal wire chain eliminated in closed form (its inverse is
  semiseparable), leaving C x C dense blocks coupled only through the column
  wires; a block Cholesky sweep down the rows carries all R inputs along, and
  the last block gives the TIA currents. O(R C^3) flops, O(C^2 + R C) memory.
- 'splu': the nodal matrix assembled and factored with scipy's sparse LU,
  solved for the C outputs (adjoint); the cross-check and fallback.

and one without a transfer matrix, for few input vectors, node-voltage
maps and very large tiles: 'iterative' (`cosim.fast.iterative`: row chains
eliminated by banded solves, conjugate gradients on the column nodes
preconditioned by the column chains; O(R C) per step and vector). It also
serves as the chord-Newton Jacobian of 1T1R tiles. `solve_fast` picks it
for at most ITERATIVE_MAX_BATCH vectors (`choose_method`).

TIAs: each column ends in its TIA's DC input resistance
(`cosim.core.peripherals.tia_input_resistance`: 0 for the ideal TIA, about
rs/a0 for 'vcvs' and 'opamp'), in series with the column's last wire
segment, and vout = rs * current times the DC closed-loop factor of the
TIA (`tia_gain`).
"""

from cosim.fast.apply import apply_transfer
from cosim.fast.nodal import graph_node_voltages
from cosim.fast.prepared import ITERATIVE_MAX_BATCH, FastTile, choose_method, prepare, solve_fast, transfer_matrix
from cosim.fast.structured import SWEEP_THREADS, StructuredFactor, torch_threads
from cosim.fast.tia import tia_gain, tia_termination

__all__ = ["ITERATIVE_MAX_BATCH", "FastTile", "StructuredFactor", "apply_transfer", "choose_method",
           "graph_node_voltages", "prepare", "SWEEP_THREADS", "solve_fast", "tia_gain", "tia_termination",
           "torch_threads", "transfer_matrix"]
