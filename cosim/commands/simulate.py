"""`cosim simulate LAYER.pt`: a PyTorch layer through crossbar tiles, into one HDF5 run."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
import warnings
from collections import Counter
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING

from cosim.commands import argtypes
from cosim.commands.common import (
    add_compensate_option,
    add_hardware_options,
    add_spice_timeout,
    check_input_memory,
    check_input_tensor,
    load_tensor,
    preset_from_args,
)
from cosim.commands.transient_read import add_transient_settings, check_transient_settings
from cosim.core.errors import InputError
from cosim.core.names import SPICE_ENGINES

if TYPE_CHECKING:
    import torch

    from cosim.analysis.transient import TileTransient
    from cosim.core.config import TranSpec
    from cosim.run.simulation import Simulation


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `cosim simulate`'s options."""
    sim = sub.add_parser("simulate", help="run a PyTorch layer through crossbar tiles")
    sim.add_argument("layer", metavar="LAYER.pt", help="torch.save'd Linear, Conv2d, GRU or Sequential "
                     "(TorchScript is refused: its code would run)")
    sim.add_argument("--tile", type=argtypes.int_at_least(2), default=128,
                     help="tile size, tile x tile devices (default 128)")
    sim.add_argument("--split", choices=("fixed", "balanced"), default="fixed",
                     help="tile sizes: full tiles then the rest, or balanced (default fixed)")
    inputs = sim.add_argument_group("inputs")
    inputs.add_argument("--input", metavar="X.pt", help="input tensor, batch first (torch.save)")
    inputs.add_argument("--batch", type=argtypes.POSITIVE_INT, default=8, help="random inputs: batch size (default 8)")
    inputs.add_argument("--seed", type=argtypes.SEED, default=0, help="seed of every random draw (default 0)")
    inputs.add_argument("--input-size", default="8,8", metavar="H,W",
                        help="random Conv2d inputs: height,width (default 8,8)")
    inputs.add_argument("--seq-len", type=argtypes.POSITIVE_INT, default=8,
                        help="random GRU inputs: time steps (default 8)")
    add_hardware_options(sim)
    add_compensate_option(sim)
    from cosim.commands.nonideal_options import add_arguments as add_nonideal_arguments
    add_nonideal_arguments(sim)
    run = sim.add_argument_group("engines and execution")
    run.add_argument("--engine", choices=("auto", "spice", "fast", "ideal"), default="auto",
                     help="auto: small tiles to ngspice, the rest to the fast solver (default)")
    run.add_argument("--spice-max-tile", type=argtypes.NON_NEGATIVE_INT, default=32, metavar="K",
                     help="auto sends tiles of at most K rows and columns to ngspice (default 32: "
                          "about 2 s for 20 input vectors here)")
    run.add_argument("--spice", choices=SPICE_ENGINES, default="ngspice",
                     help="SPICE engine of SPICE tiles and spot checks (vacask: pip install 'cosim[vacask]'; "
                          "ngspice-shared: libngspice in a worker process, for many small tiles)")
    add_spice_timeout(run)
    run.add_argument("--spot-check", type=argtypes.NON_NEGATIVE_INT, default=0, metavar="K",
                     help="also run K random fast tiles through ngspice and record the error")
    run.add_argument("--spot-vectors", type=argtypes.POSITIVE_INT, default=4, metavar="N",
                     help="input vectors per spot check (default 4; ngspice needs ~2 min per vector at 128x128)")
    tran = sim.add_argument_group("transient reads (--transient)")
    tran.add_argument("--transient", metavar="NAME[,NAME...]",
                      help="also run these tiles (names as in RUN.h5 tiles/, e.g. 0.r0c0, or 'all') as "
                           "ngspice .tran reads with an op-amp TIA on their first input vectors; their "
                           "waveforms go to tiles/NAME/waveforms (see cosim waves)")
    tran.add_argument("--transient-vectors", type=argtypes.POSITIVE_INT, default=1, metavar="N",
                      help="input vectors per transient tile (default 1)")
    add_transient_settings(tran)
    run.add_argument("--calibration", metavar="CAL.json", help="fast-solver access calibration "
                     "(from `cosim calibrate`)")
    run.add_argument("--workers", type=argtypes.POSITIVE_INT, default=1, help="local worker processes (default 1)")
    run.add_argument("--executor", choices=("local", "dask"), default="local")
    run.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address (with --executor dask)")
    run.add_argument("--out", metavar="RUN.h5", help="output file (default LAYER.run.h5 here)")
    run.add_argument("--resume", action="store_true", help="continue an interrupted run, keeping finished tiles")
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    sim.set_defaults(run=run_simulate)


def make_inputs(module: torch.nn.Module, args: argparse.Namespace) -> torch.Tensor:
    """The input batch (float64 tensor): from --input, or uniform in [-1, 1) from --seed;
    one line for an unusable file or option, and before allocating more memory than there is."""
    import torch

    from cosim.nets.loading import steps

    if args.seq_len < 1:
        raise InputError(f"--seq-len must be >= 1 time step, got {args.seq_len}")
    analog = [s.module for s in steps(module) if s.analog]
    if args.input:
        x = load_tensor(args.input, "input")
        check_input_tensor(x, f"input file {args.input}")
        first = steps(module)[0].module
        batched = {torch.nn.Conv2d: (4, "(B, C, H, W)"),
                   torch.nn.GRU: (3, "(B, T, features)" if getattr(first, "batch_first", False)
                                  else "(T, B, features)")}
        for kind, (dims, order) in batched.items():  # torch takes unbatched inputs, the tiles do not
            if isinstance(first, kind) and x.dim() != dims:
                raise InputError(f"input file {args.input} has shape {tuple(x.shape)}, but {kind.__name__} "
                                 f"takes {order}; save it with the batch dimension B (one sample: B = 1)")
        if analog:
            check_input_memory(analog[0], tuple(x.shape), f"input file {args.input} of shape",
                               "give a smaller batch or smaller samples")
        return x.double()
    if args.batch < 1:
        raise InputError(f"--batch must be >= 1, got {args.batch}")
    first = steps(module)[0].module
    generator = torch.Generator().manual_seed(args.seed)
    if isinstance(first, torch.nn.Conv2d):
        try:
            height, width = (int(s) for s in args.input_size.split(","))
        except ValueError:
            raise InputError(f"--input-size must be H,W (e.g. 8,8), got {args.input_size!r}") from None
        if height < 1 or width < 1:
            raise InputError(f"--input-size must be two positive integers H,W (e.g. 8,8), got {args.input_size!r}")
        shape = (args.batch, first.in_channels, height, width)
        fix = "give a smaller --input-size or --batch"
    elif isinstance(first, torch.nn.GRU):
        shape = ((args.batch, args.seq_len, first.input_size) if first.batch_first
                 else (args.seq_len, args.batch, first.input_size))
        fix = "give a smaller --seq-len or --batch"
    elif hasattr(first, "in_features"):
        shape = (args.batch, first.in_features)
        fix = "give a smaller --batch"
    else:
        raise InputError(f"cannot infer the input shape of {args.layer} (it starts with "
                         f"{type(first).__name__}); give --input X.pt")
    check_input_memory(first, shape, "random inputs of shape", fix)
    return torch.rand(shape, generator=generator, dtype=torch.float64) * 2 - 1


def run_simulate(args: argparse.Namespace) -> int:
    """Run `cosim simulate` from parsed arguments; returns the exit status."""
    held: list = []  # the run's Checkpoint: its lock on --out is released however the run ends
    try:
        return _simulate(args, held)
    finally:
        for checkpoint in held:
            checkpoint.release()


def _simulate(args: argparse.Namespace, held: list) -> int:
    import torch

    from cosim.commands.nonideal_options import from_arguments as nonideal_from_arguments
    from cosim.nets.loading import load_error_line, load_layer
    from cosim.results.provenance import versions
    from cosim.results.store import atomic_h5, check_output_path, write_run
    from cosim.run.checkpoint import Checkpoint
    from cosim.run.plan import layer_tile_names
    from cosim.run.records import absolute_error, relative_error
    from cosim.run.simulation import SimOptions, Simulation

    start = time.perf_counter()
    module = load_layer(args.layer)
    preset = preset_from_args(args)
    options = SimOptions(tile=args.tile, split=args.split, engine=args.engine,
                         spice_timeout_s=args.spice_timeout,
                         spice_max_tile=args.spice_max_tile, spot_check=args.spot_check,
                         spot_vectors=args.spot_vectors, spice=args.spice,
                         workers=args.workers, executor=args.executor, scheduler=args.scheduler,
                         seed=args.seed, quiet=args.quiet, calibration=args.calibration,
                         nonideal=nonideal_from_arguments(args), compensate=args.compensate)
    tran = check_transient_args(args)
    x = make_inputs(module, args)
    out = check_output_path(args.out or f"{Path(args.layer).stem}.run.h5")
    with torch.no_grad():
        try:
            ideal = module(x.float())
        except (RuntimeError, ValueError, IndexError) as exc:
            raise InputError(f"the input of shape {tuple(x.shape)} does not fit {args.layer}: "
                             f"{load_error_line(exc)}") from None
    ideal = ideal[0] if isinstance(ideal, tuple) else ideal
    if not torch.isfinite(ideal).all():
        raise InputError(f"float PyTorch's output of {args.layer} overflows float32 (inf or NaN) for this "
                         f"input (largest |x| = {float(x.abs().max()):.3g}); scale the input down")
    transient_names = (transient_tiles(args.transient, layer_tile_names(module, options.tile, options.split))
                       if tran else [])
    checkpoint = Checkpoint(out, resume=args.resume)  # refused while another run writes `out`
    held.append(checkpoint)
    simulation = Simulation(preset, replace(options, keep_details=True, keep_vectors=max(1, args.transient_vectors)),
                            checkpoint)
    from cosim.run.energy import EnergyMeter, energy_report, inferences_in

    meter = EnergyMeter(simulation)  # counts each tile's reads for its energy (cosim.run.energy)
    simulation.products = meter
    with warnings.catch_warnings():
        warnings.simplefilter("always")  # every tile's warning; cli prints each as one line
        outputs = simulation.forward(module, x)
        simulation.spot_check()
        transients = run_transients(simulation, transient_names, tran, args.disturb_threshold,
                                    args.states_of or "all")
    energy = energy_report(simulation.records, meter.tiles, preset, inferences_in(module, x), module)
    error = relative_error(outputs, ideal)
    # The same converters on an ideal array (no wires, no access device): what
    # quantisation alone costs, so the summary separates it from the circuit.
    converters_only = Simulation(preset, replace(options, engine="ideal", spot_check=0, workers=1,
                                                 executor="local", quiet=True, keep_details=False))
    converters_out = converters_only.forward(module, x)
    converters_error = relative_error(converters_out, ideal)
    # All-zero weights (a float output of zeros) leave no relative error: report ||y - y_float||.
    zero_reference = not bool(ideal.abs().max() > 0)
    absolute = (absolute_error(outputs, ideal), absolute_error(converters_out, ideal))
    config = {"preset": asdict(preset), "options": asdict(options), "layer": str(args.layer),
              "input_shape": list(x.shape), "adc_full_scale_v": simulation.adc_vfs}
    if transient_names:
        config["transient"] = {"tiles": transient_names, "vectors": args.transient_vectors,
                               "t_stop_s": tran.t_stop, "t_sample_s": tran.t_sample, "tia": "opamp"}
    attrs = {"config": json.dumps(config), "versions": versions(spice=True, torch=True, spice_engine=args.spice),
             "command": shlex.join(["cosim", *sys.argv[1:]]),
             "absolute_error": absolute[0], "converters_only_absolute_error": absolute[1]}
    if not zero_reference:
        attrs.update(relative_error=error, converters_only_relative_error=converters_error)
    with atomic_h5(out) as h5:
        write_run(h5, x.numpy(), outputs.numpy(), ideal.double().numpy(), simulation.records, attrs,
                  layers=simulation.layers, transients=transients)
        h5.attrs["seed"] = args.seed
        from cosim.results.energy_io import write_energy

        write_energy(h5, energy)
    checkpoint.remove()
    _summary(module, x, outputs, simulation, transients, (error, converters_error), checkpoint.reused,
             time.perf_counter() - start, out, absolute=absolute if zero_reference else None,
             energy_line=energy.summary_line())
    return 0


def check_transient_args(args: argparse.Namespace) -> TranSpec | None:
    """The TranSpec of --transient reads, or one line on transient options
    given without --transient (or a transient off ngspice)."""
    from cosim.analysis.transient import tran_spec

    check_transient_settings(args, add="--transient NAME")
    if not args.transient:
        return None
    if args.transient_vectors < 1:
        raise InputError(f"--transient-vectors must be >= 1, got {args.transient_vectors}")
    return tran_spec(args.t_stop, args.t_sample)


def transient_tiles(text: str | None, names: list[str]) -> list[str]:
    """The tiles --transient names (comma-separated, or 'all'), in the layer's
    order; an unknown name is one line listing some valid names."""
    if not text:
        return []
    wanted = [n.strip() for n in text.split(",") if n.strip()]
    if wanted == ["all"]:
        return list(names)
    # RUN.h5 spells '/' in a tile name as '_'; accept both.
    by_group = {n.replace("/", "_"): n for n in names}
    unknown = [n for n in wanted if n not in names and n not in by_group]
    if unknown or not wanted:
        shown = ", ".join(names[:12]) + (f", ... ({len(names)} tiles)" if len(names) > 12 else "")
        raise InputError(f"--transient: no tile named {', '.join(unknown) or repr(text)}; "
                         f"this layer has: {shown} (or 'all')")
    chosen = {by_group.get(n, n) for n in wanted}
    return [n for n in names if n in chosen]


def run_transients(simulation: Simulation, names: list[str], tran: TranSpec, threshold: float | None,
                   stored: str = "all") -> dict[str, TileTransient]:
    """Each named tile as an ngspice .tran on its first input vectors (op-amp
    TIA; the states of the `stored` cells kept, read disturb from every
    cell): tile name -> its transient; a read-disturb warning per tile above the threshold."""
    from cosim.analysis.disturb import warn_if_disturbed
    from cosim.analysis.transient import read_transient, transient_tile_spec

    transients: dict[str, TileTransient] = {}
    for name in names:
        record = simulation.records[name]
        spec = transient_tile_spec(record.spec)
        if spec.rows * spec.cols > 32 * 32:
            warnings.warn(f"transient of {spec.rows}x{spec.cols} tile {name}: expect minutes "
                          "(a 64x64 .tran takes about 2 min)", stacklevel=2)
        transients[name] = read_transient(spec, record.first_voltages, tran, threshold,
                                          simulation.options.spice_timeout_s, stored=stored)
        warn_if_disturbed(transients[name].disturb, tile=name)
    return transients


def _weights_all_zero(module: torch.nn.Module) -> bool:
    """Whether every weight of every analog step is zero."""
    from cosim.nets.loading import steps

    return all(not bool(tensor.abs().max() > 0) for step in steps(module) if step.analog
               for name, tensor in step.module.state_dict().items() if "weight" in name and tensor.numel())


def _summary(module: torch.nn.Module, x: torch.Tensor, outputs: torch.Tensor, simulation: Simulation,
             transients: dict[str, TileTransient], errors: tuple[float, float], reused: int, seconds: float,
             out: Path, absolute: tuple[float, float] | None = None, energy_line: str | None = None) -> None:
    engines = Counter(r.engine for r in simulation.records.values())
    layer = type(module).__name__
    print(f"layer {layer}: input {tuple(x.shape)} -> output {tuple(outputs.shape)}; "
          f"preset {simulation.preset.name}, tile {simulation.options.tile}")
    print("tiles: " + ", ".join(f"{count} {engine}" for engine, count in sorted(engines.items()))
          + (f" ({reused} reused from an interrupted run)" if reused else ""))
    spots = [r.spot["max_rel_error"] for r in simulation.records.values() if r.spot]
    if spots:
        print(f"spot checks: {len(spots)} tiles, fast vs {simulation.options.spice} max relative error "
              f"{max(spots):.3g}")
    for name, tt in transients.items():
        print(f"transient {name} ({tt.spec.rows}x{tt.spec.cols}, {tt.voltages.shape[0]} vector(s), "
              f"{tt.run.tran.t_stop * 1e9:.4g} ns, TIA {tt.spec.tia.kind}): {tt.disturb.summary()}")
    if transients:
        print(f"list its signals: cosim waves {out} --tile {next(iter(transients)).replace('/', '_')} --list")
    if absolute is not None:  # float output all zero: a relative error would be 0/0 or inf
        why = "the weights are all zero" if _weights_all_zero(module) else "it is all zero"
        print(f"float PyTorch's output is all zero ({why}), so no relative error: absolute error "
              f"||y - y_float|| = {absolute[0]:.4g} in output units (ideal array with the same DAC/ADC: "
              f"{absolute[1]:.4g})")
    else:
        print(f"relative error vs float PyTorch: {errors[0]:.4g} (ideal array with the same DAC/ADC: "
              f"{errors[1]:.4g}; the rest is wires, drivers and access devices)")
    if energy_line:
        print(energy_line)
    print(f"time: {seconds:.2f} s; wrote {out}")
