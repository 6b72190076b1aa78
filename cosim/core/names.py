"""The names every layer shares: engines, SPICE engines and nonlinear modes."""

#: Engines one tile can be solved on (`cosim.engines.solve`).
TILE_ENGINES = ("spice", "fast", "ideal")
#: Engines of a layer simulation: 'auto' sends small tiles to SPICE, the rest to the fast solver.
LAYER_ENGINES = ("auto",) + TILE_ENGINES
#: SPICE simulators behind engine 'spice' ('ngspice-shared': libngspice in a worker process).
SPICE_ENGINES = ("ngspice", "vacask", "ngspice-shared")
#: How the fast solver treats the access NMOS: 'auto', exact Newton, linearised, or the
#: linear transfer plus batched correction terms ('corrected', `cosim.fast.corrected`).
NONLINEAR_MODES = ("auto", "newton", "linear", "corrected")
