"""`cosim evaluate MODEL.pt --data SOURCE`: top-1 accuracy of a model and of
its cosim twin (`cosim.convert`), per-layer output error, time; one HDF5 run."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING

from cosim.commands import argtypes
from cosim.commands.common import (
    add_compensate_option,
    add_hardware_options,
    add_spice_timeout,
    check_input_tensor,
    load_tensor,
    preset_from_args,
)
from cosim.core.errors import InputError, first_line
from cosim.core.names import SPICE_ENGINES

if TYPE_CHECKING:
    import torch
    from torch import nn

    from cosim.core.config import Preset
    from cosim.twin.tilecache import TileCache


def add_parser(sub: argparse._SubParsersAction) -> None:
    """Register `cosim evaluate`'s options."""
    ev = sub.add_parser("evaluate", help="accuracy of a model and of its crossbar twin on labelled data")
    ev.add_argument("model", metavar="MODEL.pt", help="torch.save'd model (torch.nn modules and cosim's "
                    "seed networks; `cosim example resnet18-cbam` etc.); TorchScript is refused")
    ev.add_argument("--data", required=True, metavar="SOURCE",
                    help="'digits' (scikit-learn's 8x8 digits), 'X.pt,Y.pt' (inputs batch first, integer "
                         "labels) or an image folder (one subfolder per class)")
    ev.add_argument("--input-shape", metavar="C,H,W", help="reshape each sample to this shape "
                    "(default: inferred from the model's first Linear/Conv2d/GRU)")
    ev.add_argument("--limit", type=argtypes.POSITIVE_INT, metavar="N", help="evaluate the first N samples only")
    ev.add_argument("--batch-size", type=argtypes.POSITIVE_INT, default=256,
                    help="samples per forward pass (default 256)")
    ev.add_argument("--tile", type=argtypes.int_at_least(2), default=128,
                    help="tile size, tile x tile devices (default 128)")
    ev.add_argument("--split", choices=("fixed", "balanced"), default="fixed",
                    help="tile sizes: full tiles then the rest, or balanced (default fixed)")
    ev.add_argument("--seed", type=argtypes.SEED, default=0, help="seed of every random draw (default 0)")
    add_hardware_options(ev)
    add_compensate_option(ev)
    run = ev.add_argument_group("engines")
    run.add_argument("--engine", choices=("auto", "spice", "fast", "ideal"), default="fast",
                     help="fast (default: IR-drop-exact, tiles prepared once), ideal, auto (tiles of at "
                          "most --spice-max-tile in ngspice on every batch) or spice")
    run.add_argument("--spice-max-tile", type=argtypes.NON_NEGATIVE_INT, default=32, metavar="K",
                     help="with --engine auto, tiles of at most K rows and columns run in ngspice")
    run.add_argument("--spice", choices=SPICE_ENGINES, default="ngspice", help="SPICE engine")
    add_spice_timeout(run)
    run.add_argument("--nonlinear", choices=("corrected", "linear", "auto", "newton"), default="corrected",
                     help="access NMOS on the fast engine: corrected (default: transfer matrix plus batched "
                          "correction terms, within 1e-4 of exact; 42 MiB per 128x128 tile, matrices beyond "
                          "2 GiB of them fall back to linear), linear (transfer matrix; what --calibration "
                          "selects) or the exact level-1 operating point on every batch (auto/newton; slow)")
    run.add_argument("--calibration", metavar="CAL.json|auto", help="fast-solver access calibration: a "
                     "`cosim calibrate` JSON, or auto (fit it in ngspice now, ~1 s); default: small-signal access")
    run.add_argument("--precision", choices=("float32", "float64"), default="float32",
                     help="arithmetic of the prepared tiles' forward pass (default float32: TIA outputs "
                          "within ~1e-7 of float64)")
    run.add_argument("--workers", type=argtypes.POSITIVE_INT, default=None, metavar="N",
                     help="threads preparing the fast tiles (default: the CPU count)")
    run.add_argument("--executor", choices=("local", "dask"), default="local",
                     help="dask: the batches run on the cluster at --scheduler (same results)")
    run.add_argument("--scheduler", metavar="ADDR", help="Dask scheduler address (with --executor dask)")
    run.add_argument("--out", metavar="RUN.h5", help="output file (default MODEL.eval.h5 here)")
    run.add_argument("--quiet", action="store_true", help="print the summary only")
    ev.set_defaults(run=run_evaluate)


def _image_folder(directory: Path, channels: int):
    """(x (N, C, H, W) in [0, 1], labels (N,)): one subfolder per class, sorted by name."""
    import numpy as np
    import torch
    from PIL import Image

    classes = sorted(d for d in directory.iterdir() if d.is_dir())
    if not classes:
        raise InputError(f"image folder {directory} has no class subfolders; put each class's images in "
                         "its own subfolder")
    images, labels = [], []
    for label, folder in enumerate(classes):
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in (".png", ".jpg", ".jpeg", ".bmp", ".pgm", ".gif"):
                continue
            with Image.open(path) as image:
                array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32) / 255.0
            images.append(array[None] if array.ndim == 2 else array.transpose(2, 0, 1))
            labels.append(label)
    if not images:
        raise InputError(f"image folder {directory} holds no .png/.jpg/.bmp/.pgm images")
    if len({im.shape for im in images}) != 1:
        raise InputError(f"images in {directory} differ in size; resize them to one size first")
    return torch.from_numpy(np.stack(images)), torch.tensor(labels)


def first_analog(model: nn.Module) -> nn.Module:
    """The model's first Linear, Conv2d or GRU layer, the one that takes the inputs."""
    from torch import nn

    for module in model.modules():
        if isinstance(module, (nn.Linear, nn.Conv2d, nn.GRU)):
            return module
    raise InputError("the model has no Linear, Conv2d or GRU layer; nothing runs on crossbars")


def load_data(source: str, model: nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """(x float32 (N, ...), labels int64 (N,)) from 'digits', 'X.pt,Y.pt' or an image folder."""
    import torch

    from cosim.nets.examples import digits_data

    first = first_analog(model)
    if source == "digits":
        x, y = digits_data()
    elif "," in source:
        x_path, y_path = source.split(",", 1)
        x, y = load_tensor(x_path, "input"), load_tensor(y_path, "label")
    elif Path(source).is_dir():
        x, y = _image_folder(Path(source), getattr(first, "in_channels", 1))
    else:
        raise InputError(f"--data {source!r} is neither 'digits', 'X.pt,Y.pt' nor an image folder")
    check_input_tensor(x, f"the inputs of --data {source}")
    if y.layout != torch.strided or y.dim() != 1 or y.is_floating_point() or len(y) != len(x):
        raise InputError(f"labels must be one integer per sample ({len(x)}), got shape {tuple(y.shape)}")
    return x.float(), y.long()


def shape_inputs(x: torch.Tensor, model: nn.Module, input_shape: str | None) -> torch.Tensor:
    """x (N, ...) reshaped per sample to --input-shape or to what the first analog layer takes:
    (N, C, H, W) for Conv2d, (N, T, input_size) for GRU, (N, in_features) for Linear."""
    from torch import nn

    per_sample = x[0].numel()
    if input_shape:
        try:
            shape = tuple(int(s) for s in input_shape.split(","))
        except ValueError:
            raise InputError(f"--input-shape must be integers like 1,8,8, got {input_shape!r}") from None
    else:
        first = first_analog(model)
        if isinstance(first, nn.Conv2d):
            if x.dim() == 4:
                return x
            side = int(round((per_sample / first.in_channels) ** 0.5))
            shape = (first.in_channels, side, side)
        elif isinstance(first, nn.GRU):
            if x.dim() == 3:
                return x
            shape = (per_sample // first.input_size, first.input_size)
        else:
            shape = (per_sample,) if x.dim() == 2 else tuple(x.shape[1:])
    size = 1
    for s in shape:
        size *= s
    if size != per_sample:
        raise InputError(f"a sample has {per_sample} values, which do not fit shape {shape}; give --input-shape")
    return x.reshape(len(x), *shape)


def _batched(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    import torch

    with torch.no_grad():
        outs = [model(x[i:i + batch_size]) for i in range(0, len(x), batch_size)]
    outs = [o[0] if isinstance(o, tuple) else o for o in outs]
    return torch.cat(outs)


def run_evaluate(args: argparse.Namespace) -> int:
    """Run `cosim evaluate` from parsed arguments; returns the exit status."""
    from cosim.nets.networks import load_network
    from cosim.results.provenance import versions
    from cosim.results.store import atomic_h5, check_output_path, write_run
    from cosim.run.records import relative_error
    from cosim.twin.convert import convert, tile_cache

    start = time.perf_counter()
    if args.batch_size < 1 or (args.limit is not None and args.limit < 1):
        raise InputError("--batch-size and --limit must be >= 1")
    from cosim.spice.process import check_timeout

    check_timeout(args.spice_timeout, "--spice-timeout")
    model = load_network(args.model)
    x, y = load_data(args.data, model)
    if args.limit:
        x, y = x[:args.limit], y[:args.limit]
    x = shape_inputs(x, model, args.input_shape)
    out = check_output_path(args.out or f"{Path(args.model).stem}.eval.h5")
    preset = preset_from_args(args)
    options = dict(split=args.split, spice_max_tile=args.spice_max_tile, spice=args.spice,
                   calibration=args.calibration, seed=args.seed, spice_timeout_s=args.spice_timeout)
    compensate = {"compensate": args.compensate}
    t0 = time.perf_counter()
    try:
        ideal = _batched(model, x, args.batch_size)
    except RuntimeError as exc:
        raise InputError(f"inputs of shape {tuple(x.shape[1:])} do not fit {args.model}: "
                         f"{first_line(exc)}; give --input-shape") from None
    float_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    if args.workers is not None and args.workers < 1:
        raise InputError("--workers must be >= 1")
    workers = {} if args.workers is None else {"workers": args.workers}
    convert_kwargs = dict(preset=preset, tile=args.tile, engine=args.engine, nonlinear=args.nonlinear,
                          precision=args.precision, **options, **workers, **compensate)
    if args.executor == "dask" and not args.scheduler:
        raise InputError("--executor dask needs --scheduler ADDR (e.g. tcp://127.0.0.1:8786)")
    twin = convert(model, **convert_kwargs)
    prepare_s = time.perf_counter() - t0
    from cosim.twin.layer_errors import LayerErrors

    layers = LayerErrors(twin, model)
    from cosim.run.energy import RowStats, energy_report
    from cosim.twin.convert import analog_layers

    rows = RowStats(analog_layers(twin), preset)  # sum v^2 per row for the energy (cosim.run.energy, 'rows')
    t0 = time.perf_counter()
    if args.executor == "dask":  # the batches on the cluster, merged as a local run adds them up
        from cosim.commands.evaluate_remote import remote_outputs

        outputs = remote_outputs(model, convert_kwargs, x, args.batch_size, args.scheduler, layers, rows,
                                 tile_cache(twin), quiet=args.quiet)
    else:
        outputs = _batched(twin, x, args.batch_size)
    cosim_s = time.perf_counter() - t0
    rows.close()
    layer_errors = layers.result()
    converters = convert(model, preset=preset, tile=args.tile, engine="ideal", **options)
    converters_out = _batched(converters, x, args.batch_size)
    acc = {"float": _top1(ideal, y), "cosim": _top1(outputs, y), "converters_only": _top1(converters_out, y)}
    cache = tile_cache(twin)
    energy = energy_report(cache.records, rows.tile_reads(cache.records), preset, len(x), model, mode="rows")
    config = {"preset": asdict(preset), "options": asdict(cache.options), "nonlinear": args.nonlinear,
              "precision": args.precision,
              "model": str(args.model), "data": args.data, "input_shape": list(x.shape),
              "adc_full_scale_v": cache.adc_vfs}
    engines = {"auto", "spice"}
    attrs = {"config": json.dumps(config, default=str),
             "versions": versions(spice=args.engine in engines, torch=True, spice_engine=args.spice),
             "command": shlex.join(["cosim", *sys.argv[1:]]), "relative_error": relative_error(outputs, ideal),
             "converters_only_relative_error": relative_error(converters_out, ideal),
             "float_accuracy": acc["float"], "cosim_accuracy": acc["cosim"],
             "converters_only_accuracy": acc["converters_only"], "layer_errors": json.dumps(layer_errors),
             "float_s": float_s, "prepare_s": prepare_s, "cosim_s": cosim_s, "seed": args.seed,
             "energy_per_inference_j": energy.energy_per_inference_j, "latency_s": energy.latency_s,
             "tops_per_w": energy.tops_per_w}
    with atomic_h5(out) as h5:
        write_run(h5, x.double().numpy(), outputs.double().numpy(), ideal.double().numpy(), cache.records, attrs)
        h5.create_dataset("labels", data=y.numpy())
    print(energy.summary_line())
    _summary(args, x, preset, cache, acc, layer_errors, (float_s, prepare_s, cosim_s),
             time.perf_counter() - start, out)
    return 0


def _top1(logits: torch.Tensor, labels: torch.Tensor) -> float:
    return float((logits.argmax(1) == labels).float().mean())


def _summary(args: argparse.Namespace, x: torch.Tensor, preset: Preset, cache: TileCache, acc: dict[str, float],
             layer_errors: dict[str, float], times: tuple[float, float, float], total_s: float, out: Path) -> None:
    print(f"model {args.model}: {len(x)} samples of shape {tuple(x.shape[1:])} from {args.data}")
    print(f"preset {preset.name}, tile {args.tile}, engine {args.engine}: {len(cache.records)} tiles "
          f"in {len(cache.banks)} matrices")
    print(f"top-1 accuracy: float {acc['float']:.4f}, cosim {acc['cosim']:.4f} "
          f"(ideal array with the same DAC/ADC: {acc['converters_only']:.4f})")
    if not args.quiet:
        print("per-layer output error (twin layer vs float layer on the same input, relative):")
        for label, error in layer_errors.items():
            print(f"  {label:<32} {error:.4g}")
    float_s, prepare_s, cosim_s = times
    print(f"time: float {float_s:.2f} s, tile preparation {prepare_s:.2f} s, cosim {cosim_s:.2f} s, "
          f"total {total_s:.2f} s; wrote {out}")
