"""The ``digisem`` command. ``digisem --help`` lists the verbs; every verb has ``--help``."""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np

from digisem.link.errors import InputError
from digisem.snr import SNR_RANGE_HELP, parse_snr_range


class UsageError(InputError):
    """Bad command-line input: printed as one line, exit status 2."""


def _writable_parent(path: Path, option: str) -> None:
    """UsageError unless ``path`` can be created: its nearest existing ancestor is a writable folder."""
    ancestor = path.parent
    while not ancestor.exists() and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise UsageError(f"{option} {path}: {ancestor} is a file, so {path} cannot be created: choose another {option}")
    if not os.access(ancestor, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the folder {ancestor} is not writable: choose another {option}")


def _output_folder(text: str | Path, option: str = "--out") -> Path:
    """The output folder of a verb, checked before any computing: a folder, or a new one that can be made."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{option} {path} is a file, not a folder: choose a folder (it is created if missing)")
    if not path.exists():
        _writable_parent(path, option)
    elif not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{option} {path}: the folder is not writable: choose another {option}")
    return path


def _output_png(text: str | Path, option: str = "--out") -> Path:
    """An output PNG file, checked before any computing: ends in .png, is not a folder, its folder can be written."""
    path = Path(text)
    if path.suffix.lower() != ".png":
        raise UsageError(f"{option} {path}: the image is written as PNG (lossless), so the name must end in .png")
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder: give a file name ending in .png")
    _writable_parent(path, option)
    return path


def _check_link_snrs(link, snrs: list[float], snr_kind: str) -> None:
    """UsageError naming the SNR as typed if a sweep point (dB of ``snr_kind``) falls outside the
    range the link accepts (``[SNR_DB_MIN, SNR_DB_MAX]`` dB in the link's own convention)."""
    from digisem.link import link_snr_db, link_snr_kind
    from digisem.link.channel import SNR_DB_MAX, SNR_DB_MIN
    from digisem.snr import SNR_LABELS

    for snr in snrs:
        value = link_snr_db(link, snr, snr_kind)
        if value is None or SNR_DB_MIN <= value <= SNR_DB_MAX:
            continue
        wanted = link_snr_kind(link)
        converted = "" if wanted == snr_kind else f" ({value:.2f} dB {SNR_LABELS[wanted]} on this link)"
        raise UsageError(f"--snr {snr:g} dB {SNR_LABELS[snr_kind]}{converted} is outside the link's range "
                         f"[{SNR_DB_MIN:g}, {SNR_DB_MAX:g}] dB {SNR_LABELS[wanted]}: choose SNRs inside it")


def _warn_interference(link, verb: str) -> None:
    """Print a warning when the link's MIMO channel detects more streams than it has receive
    antennas (ZF/LMMSE): the streams interfere and the BER floors whatever the SNR."""
    channel = getattr(link, "channel", None)
    if getattr(channel, "detector", None) in ("zf", "lmmse") and channel.num_tx > channel.num_rx:
        print(f"digisem {verb}: warning: mimo-{channel.num_tx}x{channel.num_rx} sends {channel.num_tx} streams to {channel.num_rx} receive antennas, "
              f"so {channel.detector.upper()} detection cannot separate them and the BER floors whatever the SNR; "
              f"mimo-{channel.num_tx}x{channel.num_rx}-svd sends {channel.num_rx} interference-free eigenmode streams instead", file=sys.stderr)


def _build_link(modulation: str, channel: str, code: str | None, demapping: str | None, ldpc_k: int):
    from digisem.link import from_spec

    return from_spec({"kind": "bits", "modulation": modulation, "channel": channel, "code": code, "ldpc_k": ldpc_k, "demapping": demapping})


def _theory(modulation: str, channel: str, coded: bool, ebn0_db: list[float]) -> tuple[str, list[float]] | None:
    """Closed-form uncoded BER at the same Eb/N0 (key name, values), where one exists for this channel."""
    from digisem.link.theory import ber_awgn, ber_rayleigh

    if channel == "awgn":
        values = ber_awgn(modulation, ebn0_db, "ebn0")
    elif channel in ("rayleigh", "rayleigh-block", "rayleigh-fast"):
        values = ber_rayleigh(modulation, ebn0_db, "ebn0")
    else:
        return None
    return ("ber_uncoded_theory" if coded else "ber_theory"), [float(v) for v in np.atleast_1d(values)]


def command_ber(args: argparse.Namespace) -> int:
    """Simulate BER/BLER over an SNR sweep; write results.json and ber.png; print a table."""
    import torch

    from digisem.io import run_metadata, write_json
    from digisem.link.simulate import bit_budget, simulate_ber
    from digisem.link.theory import ebn0_to_esn0_db, esn0_to_ebn0_db
    from digisem.plots import plot_metric

    snrs = parse_snr_range(args.snr)
    if args.bits < 1 or args.target_errors < 1:
        raise UsageError("--bits and --target-errors must be >= 1")
    link = _build_link(args.modulation, args.channel, args.code, args.demapping, args.ldpc_k)
    out = _output_folder(args.out or f"runs/ber-{link.constellation.name}-{args.channel}{'-' + args.code.replace('/', '_') if args.code else ''}")
    k = link.constellation.bits_per_symbol
    rate = link.code_rate
    if args.snr_kind == "ebn0":
        esn0 = [float(v) for v in np.atleast_1d(ebn0_to_esn0_db(snrs, k, rate))]
        ebn0 = snrs
    else:
        esn0 = snrs
        ebn0 = [float(v) for v in np.atleast_1d(esn0_to_ebn0_db(snrs, k, rate))]
    _check_link_snrs(link, snrs, args.snr_kind)
    _warn_interference(link, args.verb)
    block_bits = link.code.k * 8 if link.code is not None else 4096
    budget = bit_budget(args.bits, block_bits)
    torch.manual_seed(args.seed)
    generator = torch.Generator().manual_seed(args.seed)
    started = time.perf_counter()
    sweep = simulate_ber(link, esn0, max_bits=args.bits, target_errors=args.target_errors, block_bits=block_bits, generator=generator, progress=not args.quiet)
    wall = time.perf_counter() - started
    label = f"{link.constellation.name} {args.channel}" + (f" {args.code}" if args.code else "")
    curves = {
        "snr_db": snrs,
        "esn0_db": esn0,
        "ebn0_db": ebn0,
        "ber": [p.ber for p in sweep.points],
        "bler": [p.bler for p in sweep.points],
        "bits": [p.bits for p in sweep.points],
        "bit_errors": [p.bit_errors for p in sweep.points],
    }
    theory = _theory(link.constellation.name, args.channel, link.code is not None, ebn0)
    if theory:
        curves[theory[0]] = theory[1]
    config = {key: value for key, value in vars(args).items() if key != "func"}
    results = {
        "name": label,
        "model": repr(link).replace("\n", " "),
        "description": f"Monte-Carlo BER of {label}; stop at {args.target_errors} bit errors or {budget} bits per point (--bits {args.bits} in whole blocks); "
        f"demapping {link.demapping}; block BLER over blocks of {block_bits} information bits.",
        "results": curves,
        "meta": run_metadata(args.seed, "cpu", snr_kind=args.snr_kind, channel=args.channel, modulation=link.constellation.name, code=args.code, code_rate=rate, wall_s=round(wall, 2), config=config),
    }
    write_json(out / "results.json", results)
    plot_metric([results], "ber", out / "ber.png", title=label)
    theory_values = theory[1] if theory else [None] * len(snrs)
    kind = "Eb/N0" if args.snr_kind == "ebn0" else "Es/N0"
    print(f"\n{kind + ' (dB)':>12s} {'Es/N0 (dB)':>11s} {'BER':>10s} {'theory':>10s} {'BLER':>9s} {'bits':>11s} {'errors':>8s}")
    for s, point, t in zip(snrs, sweep.points, theory_values):
        theory_text = f"{t:10.3e}" if t is not None else f"{'-':>10s}"
        print(f"{s:12.2f} {point.esn0_db:11.2f} {point.ber:10.3e} {theory_text} {point.bler:9.3e} {point.bits:11d} {point.bit_errors:8d}")
    if theory and theory[0] == "ber_uncoded_theory":
        print("(theory column: uncoded BER at the same Eb/N0, for the coding gain)")
    print(f"\nwrote {out / 'results.json'} and {out / 'ber.png'} ({wall:.1f} s)")
    return 0


def print_curves(curves: dict[str, list[float]], axis: str, columns: list[tuple[str, str, str]]) -> None:
    """Print a results table: one row per ``curves["snr_db"]`` point, ``columns`` as (key, header, format)."""
    widths = [max(len(header), 10) for _, header, _ in columns]
    print("\n" + f"{axis:>10s} " + " ".join(f"{header:>{width}s}" for (_, header, _), width in zip(columns, widths)))
    for index, snr in enumerate(curves["snr_db"]):
        print(f"{snr:10.1f} " + " ".join(f"{curves[key][index]:>{width}{spec}}" for (key, _, spec), width in zip(columns, widths)))


def command_train(args: argparse.Namespace) -> int:
    """Train a recipe (recipes/<name>.yaml or a path) with key=value overrides; --resume continues an interrupted run."""
    from digisem.train import load_recipe, run_recipe

    recipe = load_recipe(args.recipe, args.overrides)
    started = time.perf_counter()
    run_dir = run_recipe(recipe, args.runs, args.data, resume=args.resume, progress=not args.quiet)
    print(f"run folder: {run_dir} ({time.perf_counter() - started:.0f} s)")
    return 0


def _check_limit(limit: int | None) -> None:
    if limit is not None and limit < 1:
        raise UsageError(f"--limit must be >= 1, got {limit}")


def _test_set(system, data: str | None, limit: int | None):
    """``(dataset, description)`` for ``--data``: the bundled samples, or the test images of the
    system's kind under a data root (CIFAR-10 test split; Kodak24 256x256 crops for high resolution)."""
    from digisem.data import describe_dataset, recipe_dataset

    _check_limit(limit)
    kind = getattr(system, "sample_kind", "cifar")
    if data == "samples":
        if kind == "kodak":
            from torch.utils.data import TensorDataset

            from digisem.data import sample_images

            dataset = TensorDataset(sample_images("kodak")[0][:limit])
        else:
            dataset = recipe_dataset("samples", None, "test", limit=limit)
        return dataset, "bundled sample images"
    name = "cifar10" if kind == "cifar" else "kodak24"
    dataset = recipe_dataset(name, data, "test", limit=limit, crop=None if kind == "cifar" else 256)
    return dataset, describe_dataset(name, "test", dataset) + ("" if kind == "cifar" else " (256x256 center crops)")


def _eval_link(family, channel: str | None, recorded=None):
    """``(link spec, mode)`` of ``--channel`` (default: the link the model was trained over,
    ``recorded``, else the family's; ``analog``: no quantization, no link)."""
    if channel == "analog":
        return None, "analog"
    if channel is not None:
        return channel, None
    return (recorded if recorded is not None else family.default_link), None


DENOISERS = ("none", "mmse", "scdm", "scdm-joint")
SAMPLER_CHOICES = ("pc", "pc1", "predictor", "ode", "tweedie")
"""The keys of :data:`digisem.systems.scdm.SAMPLERS` (kept here so that --help needs no torch import)."""


def load_denoiser(kind: str, codec, scdm_source: str, sampler: str | None = None):
    """``(restorer or None, decoder or None, label)`` for ``--denoiser``: none, mmse (the codec's
    empirical symbol prior), scdm (the codec's decoder), scdm-joint (SCDM's jointly trained decoder);
    ``sampler`` (a key of :data:`digisem.systems.scdm.SAMPLERS`) replaces the SCDM's own sampler."""
    from digisem import zoo
    from digisem.systems.scdm import SAMPLERS, MMSEDenoiser

    if kind not in DENOISERS:
        raise UsageError(f"unknown --denoiser {kind!r}: use one of {DENOISERS}")
    if kind == "none":
        return None, None, "no denoising"
    if getattr(codec, "task", None) == "classification":
        raise UsageError("--denoiser restores the images of symbol-level image codecs (JCM); this model is a classifier: "
                         "to measure its robustness, use digisem attack MODEL (clean vs attacked accuracy)")
    if getattr(codec, "payload_kind", None) != "symbols":
        raise UsageError("--denoiser applies to symbol-level codecs (JCM) only")
    if kind == "mmse":
        return MMSEDenoiser(codec.prior_symbols()), None, "per-symbol MMSE"
    from digisem.systems import FAMILIES

    scdm, scdm_metadata = zoo.load(scdm_source)
    if FAMILIES[scdm_metadata["system"]].kind != "restorer":
        raise UsageError(f"--scdm {scdm_source} is a {scdm_metadata.get('system')!r} system, not a restorer such as an SCDM")
    if sampler is not None:
        scdm.sampler = SAMPLERS[sampler]
    if kind == "scdm-joint":
        if scdm.decoder is None:
            raise UsageError(f"SCDM {scdm_source} has no jointly trained decoder (its recipe skipped Stage 2): use --denoiser scdm")
        return scdm, scdm.decoder, "SCDM + joint decoder"
    return scdm, None, "SCDM"


EVAL_COLUMNS = [("psnr", "PSNR (dB)", ".2f"), ("ssim", "SSIM", ".4f"), ("ms_ssim", "MS-SSIM", ".4f"), ("accuracy", "accuracy", ".4f"),
                ("accuracy_attacked", "attacked", ".4f"), ("latent_mse", "latent MSE", ".4f"), ("latent_mse_channel", "channel MSE", ".4f"),
                ("ber", "bit errors", ".2e")]


def command_eval(args: argparse.Namespace) -> int:
    """Evaluate a trained system (zoo name or run folder) over an SNR sweep: results.json, plots, grid.png."""
    import torch

    from digisem import zoo
    from digisem.data import sample_images
    from digisem.distributed import distributed_context
    from digisem.evaluate import sweep
    from digisem.io import run_metadata, write_json
    from digisem.link import link_snr_db
    from digisem.link.spec import describe
    from digisem.plots import plot_metric, reconstruction_grid
    from digisem.snr import SNR_LABELS
    from digisem.systems import FAMILIES

    _check_limit(args.limit)
    if args.reference:
        _check_reference_codec(args.reference)
    model, metadata = zoo.load(args.model)
    family = FAMILIES[metadata["system"]]
    if family.kind != "system":
        raise UsageError(f"{args.model} is a {family.name!r} {family.kind}, not a system: evaluate its codec with it, e.g. digisem eval {metadata.get('codec', 'jcm-cifar10-64qam')} --denoiser scdm --scdm {args.model}")
    restorer, decoder, label = load_denoiser(args.denoiser, model, args.scdm, args.sampler)
    system = model
    if restorer is not None:
        system = model.with_parts(restorer=restorer, decoder=decoder or model.decoder)
        label += f", sampler {args.sampler}" if args.sampler is not None and args.denoiser.startswith("scdm") else ""
    if args.no_restorer:
        if model.restorer is None:
            raise UsageError(f"{args.model} has no restorer to switch off")
        system = model.with_parts(restorer=None)
        label = "without its restorer"
    snr_kind = args.snr_kind or family.snr_kind
    snrs = parse_snr_range(args.snr or family.default_snrs)
    grid_snrs = parse_snr_range(args.grid_snr or ",".join(f"{v:g}" for v in snrs[:: max(1, len(snrs) // 4)][:4]))
    link_spec, mode = _eval_link(family, args.channel, zoo.recorded_link(metadata))
    link = system.link_for(link_spec)
    _check_link_snrs(link, snrs + grid_snrs, snr_kind)
    _warn_interference(link, args.verb)
    out = _output_folder(args.out or f"runs/eval-{Path(str(args.model)).name}-{args.channel or 'default'}" + (f"-{args.denoiser}" if restorer is not None else ""))
    dataset, description = _test_set(system, args.data, args.limit)
    started = time.perf_counter()
    curves = sweep(system, link, snrs, dataset, snr_kind=snr_kind, mode=mode, batch_size=args.batch_size, seed=args.seed, progress=not args.quiet, label=f"eval {args.model}",
                   shard=True, precision=args.precision)
    rank, world_size = distributed_context()
    if rank != 0:  # under torchrun every rank swept its share of the SNR points; rank 0 writes
        return 0
    name = metadata.get("name", str(args.model)) + (f" + {label}" if restorer is not None or args.no_restorer else "")
    channel = args.channel or describe(link_spec)
    axis = SNR_LABELS[snr_kind]
    results = {
        "name": name,
        "model": str(args.model),
        "description": f"{name} over {channel} (SNR = {axis}) on {description}",
        "results": curves,
        "meta": run_metadata(args.seed, "cpu", dataset=description, n_images=len(dataset), channel=channel, link=link_spec, snr_kind=snr_kind, mode=mode or system.default_mode,
                             denoiser=args.denoiser, scdm=args.scdm if args.denoiser.startswith("scdm") else None, sampler=args.sampler, precision=args.precision,
                             psnr="mean over images of per-image PSNR (all channels, data range 1)", wall_s=round(time.perf_counter() - started, 1), ranks=world_size),
    }
    write_json(out / "results.json", results)
    written = [out / "results.json"]
    for metric in ("psnr", "accuracy", "latent_mse"):
        if metric in curves:
            written.append(plot_metric([results], metric, out / f"{metric}.png", title=name))
    if args.reference:
        reference, xlabel = eval_reference(args.reference, system, link, link_spec, snrs, snr_kind, dataset, description, mode, args.seed, not args.quiet)
        written.append(write_json(out / f"reference-{args.reference}.json", reference))
        written.append(plot_metric([results, reference], "psnr", out / f"psnr-vs-{args.reference}.png", title=f"{name} vs {reference['name']}", xlabel=xlabel))
    if system.task == "reconstruction":
        samples, _ = sample_images(getattr(system, "sample_kind", "cifar"))
        rows = [("original", samples)]
        with torch.no_grad():
            for snr in grid_snrs:
                x_hat = system(samples, link=link, snr_db=link_snr_db(link, snr, snr_kind), mode=mode, generator=torch.Generator().manual_seed(args.seed))["x_hat"]
                rows.append((f"{snr:g} dB", x_hat))
        written.append(reconstruction_grid(rows, out / "grid.png", title=f"{name}, {channel}, {axis}"))
    print_curves(curves, f"{axis} (dB)", [column for column in EVAL_COLUMNS if column[0] in curves])
    print(f"\nwrote {', '.join(str(path) for path in written)}")
    return 0


REFERENCE_DATASETS = ("cifar10", "kodak24")


def _parse_ratio(text: str) -> float:
    """``"1/6"`` or ``"0.1667"`` -> a bandwidth ratio in (0, 1] (channel uses per image / 3HW)."""
    try:
        numerator, _, denominator = text.partition("/")
        ratio = float(numerator) / float(denominator or 1)
    except (ValueError, ZeroDivisionError) as err:
        raise UsageError(f"--ratio must be a fraction such as 1/6 or a number, got {text!r}") from err
    if not 0.0 < ratio <= 1.0:
        raise UsageError(f"--ratio must be in (0, 1] (channel uses per image / values per image), got {text!r}")
    return ratio


def _check_reference_codec(codec: str):
    """The :class:`~digisem.systems.classical.Codec` of ``codec``, or a UsageError saying what to use (or install)."""
    from digisem.systems.classical import check_codec

    try:
        return check_codec(codec)
    except (ValueError, RuntimeError) as err:
        raise UsageError(str(err)) from err


def command_baseline(args: argparse.Namespace) -> int:
    """The classical reference: an image codec at the highest quality that fits, 5G LDPC + QAM (every MCS
    and the best per SNR) at a channel-use budget per image, and the codec at the capacity budget:
    results.json and psnr.png."""
    from digisem.data import describe_dataset, recipe_dataset
    from digisem.evaluate import reference_results
    from digisem.io import write_json
    from digisem.plots import plot_reference
    from digisem.systems.base import images_of
    from digisem.systems.classical import URBAN100_MEAN

    _check_reference_codec(args.codec)
    _check_limit(args.limit)
    snrs = parse_snr_range(args.snr)
    crop = 256 if args.dataset == "kodak24" else None
    if args.data == "samples":
        if args.dataset != "cifar10":
            raise UsageError("--data samples holds CIFAR-10 images only: drop --dataset kodak24 or give a data root")
        dataset, description = recipe_dataset("samples", None, "test", limit=args.limit), "bundled sample images"
    else:
        dataset = recipe_dataset(args.dataset, args.data, "test", limit=args.limit, crop=crop)
        description = describe_dataset(args.dataset, "test", dataset) + (" (256x256 center crops)" if crop else "")
    first = images_of(dataset[0])
    if args.channel_uses is not None:
        if args.channel_uses < 1:
            raise UsageError(f"--channel-uses must be >= 1, got {args.channel_uses}")
        channel_uses = args.channel_uses
    else:
        channel_uses = round(_parse_ratio(args.ratio) * first.numel())
    out = _output_folder(args.out or f"runs/baseline-{args.codec}-{args.dataset}-{channel_uses}")
    results = reference_results(args.codec, channel_uses, snrs, dataset, description, channel=args.channel, seed=args.seed, progress=not args.quiet,
                                fallback=URBAN100_MEAN if args.dataset == "kodak24" else None)
    write_json(out / "results.json", results)
    plot = plot_reference(results, out / "psnr.png", title=f"{results['name']}, {channel_uses} channel uses, {args.channel}")
    curves = results["results"]
    print(f"\n{'Es/N0 (dB)':>10s} {'best MCS':>10s} {'PSNR (dB)':>10s} {'SSIM':>7s} {'failures':>9s} {'capacity bits':>14s} {'PSNR at capacity':>17s}")
    for index, snr in enumerate(curves["snr_db"]):
        print(f"{snr:10.1f} {curves['mcs'][index]:>10s} {curves['psnr'][index]:10.2f} {curves['ssim'][index]:7.4f} {curves['failure_rate'][index]:9.3f} "
              f"{curves['capacity_bits'][index]:14d} {curves['psnr_capacity_bound'][index]:17.2f}")
    if curves["unfit_mcs"]:
        print(f"(no image fits the budget of {', '.join(curves['unfit_mcs'])})")
    print(f"\nwrote {out / 'results.json'} and {plot} ({results['meta']['wall_s']:.0f} s)")
    return 0


def eval_reference(codec: str, system, link, link_spec, snrs: list[float], snr_kind: str, dataset, description: str, mode, seed: int, progress: bool) -> tuple[dict, str]:
    """``digisem eval --reference CODEC``: the reference at the system's channel uses per image and on
    its SNR axis (an Eb/N0 axis is converted to Es/N0 with the system's bits per channel use), and
    the x-axis label that says so."""
    import torch

    from digisem.evaluate import reference_results
    from digisem.link import link_snr_db
    from digisem.link.spec import parse_spec
    from digisem.snr import SNR_LABELS
    from digisem.systems.base import images_of

    sample = images_of(next(iter(torch.utils.data.DataLoader(dataset, batch_size=1))))
    with torch.no_grad():
        out = system(sample, link=link, snr_db=link_snr_db(link, snrs[0], snr_kind), mode=mode, generator=torch.Generator().manual_seed(seed))
    uses, bits = out.get("channel_uses_per_image"), out.get("bits_per_image")
    if not uses:
        raise UsageError(f"--reference needs the system's channel uses per image, and its link {link_spec!r} counts none (a fixed-p BSC or no link): give --channel, e.g. bsc or awgn")
    mapping = parse_spec(link_spec, system.payload_kind) if isinstance(link_spec, str) else None
    channel = mapping.get("channel", "awgn") if mapping and mapping["kind"] != "bsc" else "awgn"
    offset = 0.0
    label = f"{SNR_LABELS[snr_kind]} (dB)"
    if snr_kind == "ebn0":
        offset = 10 * float(np.log10(bits / uses))
        label += f"; reference at Es/N0 = Eb/N0 {offset:+.2f} dB ({bits} bits in {uses} channel uses)"
    reference = reference_results(codec, int(uses), snrs, dataset, description, channel=channel, seed=seed, progress=progress, axis_offset_db=offset, snr_kind=snr_kind)
    return reference, label


def command_zoo(args: argparse.Namespace) -> int:
    """List the bundled pretrained models with their recorded results."""
    from digisem import zoo
    from digisem.snr import SNR_LABELS
    from digisem.systems import FAMILIES
    from digisem.weights import CheckpointError, read_weights

    names = zoo.zoo_names()
    if not names:
        print("the zoo is empty")
        return 0
    print(f"{'name':26s} {'system':8s} {'paper name':30s} {'recorded test result':>22s}  {'bundled samples':30s} recipe")
    broken = []
    for name in names:
        try:
            _, metadata = read_weights(zoo.resolve_weights(name))
        except CheckpointError as err:
            broken.append(f"{name}: {err}")
            print(f"{name:26s} unreadable: see the error below")
            continue
        recorded = _recorded_result(metadata.get("results", {}))
        check = metadata.get("sample_check", {})
        kind = SNR_LABELS[check.get("snr_kind", FAMILIES[metadata["system"]].snr_kind if metadata.get("system") in FAMILIES else "esn0")]
        where = check.get("link") or check.get("channel") or "recorded link"
        if "psnr" in check:
            check_text = f"{check['psnr']:.2f} dB at {check['snr_db']:g} dB {kind} ({where})"
        elif "accuracy" in check:
            check_text = f"accuracy {check['accuracy']:.3f} at {check['snr_db']:g} dB {kind}"
        else:
            check_text = "-"
        print(f"{name:26s} {metadata.get('system', '?'):8s} {metadata.get('name', '?'):30s} {recorded:>22s}  {check_text:30s} {metadata.get('recipe', '?')}")
    for problem in broken:
        print(f"digisem zoo: error: {problem} (reinstall digisem to restore the zoo's files)", file=sys.stderr)
    return 1 if broken else 0


def _recorded_result(results: dict) -> str:
    """A zoo model's headline test number for ``digisem zoo``: the mean PSNR over 0-18 dB, or a
    classifier's accuracy at 3 dB (the robust paper's SNR; else at the highest recorded SNR)."""
    average = results.get("summary", {}).get("psnr_avg_0_18")
    if average is not None:
        return f"{average:.2f} dB avg 0-18 dB"
    curves = results.get("results", {})
    if curves.get("accuracy") and curves.get("snr_db"):
        snrs = curves["snr_db"]
        index = snrs.index(3.0) if 3.0 in snrs else snrs.index(max(snrs))
        return f"accuracy {curves['accuracy'][index]:.3f} at {snrs[index]:g} dB"
    return "-"


ATTACK_CHOICES = ("ifgsm", "fgsm", "pgd", "pgd-l2", "patch")


def command_attack(args: argparse.Namespace) -> int:
    """Attack a pretrained classifier (masked VQ-VAE or JSCC) with transmitter-side semantic noise:
    prints clean and attacked accuracy at one SNR, writes attack.json and perturbation.png."""
    import torch

    from digisem import zoo
    from digisem.attacks import from_spec as attack_from_spec
    from digisem.evaluate import sweep
    from digisem.io import run_metadata, write_json
    from digisem.plots import reconstruction_grid

    if not args.eps >= 0:
        raise UsageError(f"--eps is an L-infinity budget on images in [0, 1] (L2 for pgd-l2) and must be >= 0, got {args.eps}")
    if args.steps < 1:
        raise UsageError(f"--steps must be >= 1, got {args.steps}")
    if args.attack == "patch" and not 1 <= args.patch_size <= 32:
        raise UsageError(f"--patch-size must be in [1, 32] pixels (CIFAR images are 32x32), got {args.patch_size}")
    if args.patch_at is not None:
        if args.attack != "patch":
            raise UsageError(f"--patch-at places the patch attack's square: it needs --attack patch, got --attack {args.attack}")
        if not all(0 <= value <= 32 - args.patch_size for value in args.patch_at):
            raise UsageError(f"--patch-at TOP LEFT must keep the {args.patch_size}x{args.patch_size} square inside the 32x32 image (0 to {32 - args.patch_size}), got {args.patch_at}")
    _check_limit(args.limit)
    model, metadata = zoo.load(args.model)
    if getattr(model, "task", None) != "classification":
        raise UsageError(f"{args.model} is not a classifier (masked VQ-VAE or JSCC): digisem attack needs one, e.g. vqvae-fim-at-cifar10")
    link_spec = zoo.recorded_link(metadata)
    link = model.link_for(link_spec)
    _check_link_snrs(link, [args.snr], "esn0")
    out = _output_folder(args.out)
    dataset, description = _test_set(model, args.data, args.limit)
    if args.attack == "patch":
        step = args.step if args.step is not None else 0.25
        spec = {"kind": "patch", "size": args.patch_size, "step": step, "steps": args.steps}
        if args.patch_at is not None:
            spec.update(top=args.patch_at[0], left=args.patch_at[1])
    else:
        step = args.step if args.step is not None else 1.25 * args.eps / args.steps
        spec = {"kind": args.attack, "epsilon": args.eps, "step": step, "steps": args.steps} if args.eps > 0 else {"kind": "none"}
    attack = attack_from_spec(spec)
    started = time.perf_counter()
    curves = sweep(model, link, [args.snr], dataset, attack=attack, batch_size=args.batch_size, seed=args.seed, progress=not args.quiet, label=f"attack {args.model}")
    clean = curves["accuracy"][0]
    attacked = curves["accuracy_attacked"][0] if attack is not None else clean
    results = {
        "clean_accuracy": clean,
        "attacked_accuracy": attacked,
        "model": str(args.model),
        "attack": spec,
        "snr_db": args.snr,
        "snr_kind": "esn0",
        "link": link_spec,
        "n_images": len(dataset),
        "meta": run_metadata(args.seed, "cpu", dataset=description, wall_s=round(time.perf_counter() - started, 1)),
    }
    write_json(out / "attack.json", results)
    images, labels = next(iter(torch.utils.data.DataLoader(dataset, batch_size=8, shuffle=False)))
    adversarial = images
    if attack is not None:
        generator = torch.Generator().manual_seed(args.seed)
        adversarial = attack(lambda x: torch.nn.functional.cross_entropy(model(x, generator=generator)["logits"], labels, reduction="none"), images, generator)
    scale = max(float((adversarial - images).abs().max()), 1e-12) if args.attack in ("patch", "pgd-l2") else max(args.eps, 1e-12)
    rows = [("clean", images), (f"noise x{0.5 / scale:.0f}", (adversarial - images) / (2 * scale) + 0.5), ("attacked", adversarial)]
    reconstruction_grid(rows, out / "perturbation.png", title=f"{args.model}: {args.attack} semantic noise, epsilon {args.eps:g}")
    print(f"{args.model}: {len(dataset)} images, Es/N0 {args.snr:g} dB, {args.attack} epsilon {args.eps:g}")
    print(f"clean accuracy     {clean:.4f}\nattacked accuracy  {attacked:.4f}")
    print(f"wrote {out / 'attack.json'} and {out / 'perturbation.png'}")
    return 0


def command_send(args: argparse.Namespace) -> int:
    """Send one image through a pretrained image system (tiled into the model's block size) and print its PSNR."""
    import torch

    from digisem import zoo
    from digisem.evaluate import send_image
    from digisem.imageio import read_pixels, write_pixels
    from digisem.link import link_snr_db
    from digisem.link.spec import describe
    from digisem.snr import SNR_LABELS
    from digisem.systems import FAMILIES

    model, metadata = zoo.load(args.model)
    family = FAMILIES[metadata["system"]]
    if family.kind != "system" or model.task != "reconstruction":
        raise UsageError(f"{args.model} does not reconstruct images (a {family.name} {family.kind}): digisem send takes an image system such as ampsc-cifar10-4bit or jcm-cifar10-64qam (see digisem zoo)")
    out = _output_png(args.out)
    block = 32 if getattr(model, "sample_kind", "cifar") == "cifar" else 256
    pixels = read_pixels(args.image)
    link_spec, mode = _eval_link(family, args.channel, zoo.recorded_link(metadata))
    link = model.link_for(link_spec)
    snr_kind = family.snr_kind
    _check_link_snrs(link, [args.snr], snr_kind)
    generator = torch.Generator().manual_seed(args.seed)
    received, value = send_image(model, pixels, block, link=link, snr_db=link_snr_db(link, args.snr, snr_kind), mode=mode, generator=generator,
                                 progress=not args.quiet, label="send")
    write_pixels(received, out)
    height, width = pixels.shape[:2]
    blocks = -(-height // block) * -(-width // block)
    channel = args.channel or describe(link_spec)
    print(f"{args.image}: {width}x{height} px in {blocks} blocks of {block}x{block}, {channel} at {SNR_LABELS[snr_kind]} = {args.snr:g} dB: PSNR {value:.2f} dB -> {args.out}")
    return 0


def command_demo(args: argparse.Namespace) -> int:
    """Send the bundled sample images through the pretrained systems of the zoo over real links (16-QAM Gray for AMP-SC and SoftHe22, AWGN symbols for JCM and SCDM)."""
    from digisem.demo import run_demo
    from digisem.io import staged_folder

    snrs = parse_snr_range(args.snr)
    out = _output_folder(args.out)
    with staged_folder(out) as stage:
        report = out / run_demo(stage, snrs, seed=args.seed, progress=not args.quiet).relative_to(stage)
    print(f"wrote the PSNR and accuracy plots, image grids and results files to {out}/ and the report {report} (open it in a browser)")
    return 0


def command_download(args: argparse.Namespace) -> int:
    """Download a dataset that digisem can fetch (CIFAR-10 python batches, checksum-verified)."""
    from digisem.data import download_cifar10

    path = download_cifar10(args.root)
    print(f"CIFAR-10 ready in {path}")
    return 0


def command_plot(args: argparse.Namespace) -> int:
    """Plot one metric of several results JSON files on one figure."""
    import json

    from digisem.plots import plot_metric

    results_list = []
    for name in args.results:
        try:
            data = json.loads(Path(name).read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise UsageError(f"cannot read results file {name}: {err}") from err
        if not isinstance(data, dict) or "results" not in data or "snr_db" not in data.get("results", {}):
            raise UsageError(f"{name} is not a digisem results file (needs results.snr_db)")
        results_list.append(data)
    metric = args.metric or ("ber" if "ber" in results_list[0]["results"] else "psnr")
    lacking = [name for name, data in zip(args.results, results_list) if metric not in data["results"]]
    if lacking:
        held = sorted({key for data in results_list for key, values in data["results"].items() if key != "snr_db" and isinstance(values, list)})
        raise UsageError(f"--metric {metric}: {', '.join(lacking)} hold no {metric} curve; these files hold {', '.join(held)}")
    kinds = {data.get("meta", {}).get("snr_kind", "esn0") for data in results_list}
    if len(kinds) > 1:
        by_kind = {kind: [name for name, data in zip(args.results, results_list) if data.get("meta", {}).get("snr_kind", "esn0") == kind] for kind in sorted(kinds)}
        raise UsageError("these files use different SNR axes, which one plot cannot share: "
                         + "; ".join(f"{kind}: {', '.join(names)}" for kind, names in by_kind.items()) + " (plot each kind on its own)")
    _writable_parent(Path(args.out), "--out")
    path = plot_metric(results_list, metric, args.out)
    print(f"wrote {path}")
    return 0


def command_app(args: argparse.Namespace) -> int:
    """Serve the interactive page (pick an image, a zoo model, a channel and an SNR; see what arrives) until interrupted."""
    from digisem.app import launch

    launch(args.host, args.port)
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with all verbs."""
    from digisem import __version__

    parser = argparse.ArgumentParser(prog="digisem", description="Digital semantic communications toolkit.")
    parser.add_argument("--version", action="version", version=f"digisem {__version__}")
    verbs = parser.add_subparsers(title="verbs", dest="verb", metavar="VERB")

    ber = verbs.add_parser("ber", help="simulate bit error rate over an SNR sweep (results JSON + plot)", description=command_ber.__doc__)
    ber.add_argument("--modulation", default="16qam", help="bpsk, qpsk, 16qam, 64qam, 256qam, 8psk, ... (default 16qam)")
    ber.add_argument("--snr", default="0:14:1", help=SNR_RANGE_HELP + " (default 0:14:1)")
    ber.add_argument("--snr-kind", choices=("ebn0", "esn0"), default="ebn0", help="the SNR axis: Eb/N0 per information bit or Es/N0 per symbol (default ebn0)")
    ber.add_argument("--channel", default="awgn", help="awgn, rayleigh (i.i.d. per symbol), rayleigh-block (one gain per 4096-bit block), mimo-NTxNR[-zf|-lmmse|-svd] e.g. mimo-4x8, mimo-8x4-svd (default awgn)")
    ber.add_argument("--code", default=None, help="channel code, e.g. ldpc-1/2 (5G NR LDPC; default: uncoded)")
    ber.add_argument("--ldpc-k", type=int, default=512, help="LDPC information bits per codeword (default 512)")
    ber.add_argument("--demapping", choices=("hard", "app", "maxlog"), default=None, help="default: hard uncoded, app with a code")
    ber.add_argument("--bits", type=int, default=10_000_000, help="bit budget per SNR point (default 1e7)")
    ber.add_argument("--target-errors", type=int, default=1000, help="stop a point after this many bit errors (default 1000)")
    ber.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ber.add_argument("--out", default=None, help="output folder (default runs/ber-<modulation>-<channel>[-code])")
    ber.add_argument("--quiet", action="store_true", help="no progress bar")
    ber.set_defaults(func=command_ber)

    train = verbs.add_parser("train", help="train a recipe (e.g. ampsc-cifar10-4bit-cpu)", description=command_train.__doc__)
    train.add_argument("recipe", help="recipe name in recipes/ or a YAML path")
    train.add_argument("overrides", nargs="*", help="key=value overrides, e.g. schedule.0.epochs=2 model.width=32")
    train.add_argument("--resume", action="store_true", help="continue an interrupted run from its last epoch checkpoint")
    train.add_argument("--runs", default="runs", help="folder of run folders and cached stages (default runs)")
    train.add_argument("--data", default=None, help="data folder (default: $DIGISEM_DATA)")
    train.add_argument("--quiet", action="store_true", help="no progress bars")
    train.set_defaults(func=command_train)

    evaluate = verbs.add_parser("eval", help="evaluate a trained system over an SNR sweep", description=command_eval.__doc__)
    evaluate.add_argument("model", help="zoo name (see digisem zoo), run folder or .safetensors file")
    evaluate.add_argument("--snr", default=None, help=SNR_RANGE_HELP + "; default the system's: Eb/N0 0:18:1 for AMP-SC, Es/N0 per complex symbol -18:18:6 for JCM, 0:20:2 for DeepJSCC, ...")
    evaluate.add_argument("--snr-kind", choices=("ebn0", "esn0"), default=None, help="the SNR axis (default the system's: ebn0 for AMP-SC, esn0 otherwise)")
    evaluate.add_argument("--channel", default=None, help="a link spec (default the system's): bsc (p from 16-QAM BER at Eb/N0, AMP-SC's model), none (no errors), analog (no quantization, no link), "
                          "awgn, rayleigh, rayleigh-block, mimo-8x4-svd (16-QAM for bit payloads, the symbols themselves for symbol codecs), 16qam-awgn-ldpc-1/2, ...")
    evaluate.add_argument("--denoiser", default="none", help="symbol codecs (JCM) only: none, mmse (per-symbol posterior mean), scdm, scdm-joint (SCDM with its jointly trained decoder)")
    evaluate.add_argument("--no-restorer", action="store_true", help="evaluate without the system's restorer (AMP-SC without IRSNet)")
    evaluate.add_argument("--sampler", choices=SAMPLER_CHOICES, default=None, help="SCDM sampler: pc (the paper's: predictor + 2 Langevin steps), pc1, predictor, ode (probability flow), tweedie (one step); default: the SCDM's own")
    evaluate.add_argument("--scdm", default="scdm-cifar10-64qam", help="the SCDM for --denoiser scdm/scdm-joint: zoo name, run folder or weights file (default scdm-cifar10-64qam)")
    evaluate.add_argument("--data", default=None, help="data root (default $DIGISEM_DATA) or 'samples' for the bundled images")
    evaluate.add_argument("--limit", type=int, default=None, help="evaluate only the first N test images (class-balanced for CIFAR-10)")
    evaluate.add_argument("--grid-snr", default=None, help="SNRs of the reconstruction grid (default: four of the sweep's)")
    evaluate.add_argument("--batch-size", type=int, default=100, help="images per batch (default 100)")
    evaluate.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    evaluate.add_argument("--precision", choices=("fp32", "bf16"), default="fp32",
                          help="fp32 (default: the same numbers everywhere) or bf16 autocast: about 1.7x faster for AMP-SC on CPUs with native bfloat16, PSNR within ~0.01 dB")
    evaluate.add_argument("--out", default=None, help="output folder (default runs/eval-<model>-<channel>)")
    evaluate.add_argument("--reference", default=None, metavar="CODEC", help="also draw the classical reference (webp, jpeg, jpeg2000, avif, bpg + 5G LDPC, best MCS, and codec + capacity) "
                          "at the system's channel uses per image: reference-CODEC.json, psnr-vs-CODEC.png (it sweeps 15 MCS: use --limit)")
    evaluate.add_argument("--quiet", action="store_true", help="no progress bar")
    evaluate.set_defaults(func=command_eval)

    baseline = verbs.add_parser("baseline", help="the classical reference: image codec + 5G LDPC + QAM at a channel-use budget, and codec + capacity", description=command_baseline.__doc__)
    baseline.add_argument("codec", help="webp, jpeg (abbreviated), jpeg2000, avif or bpg (needs bpgenc/bpgdec on PATH)")
    budget = baseline.add_mutually_exclusive_group(required=True)
    budget.add_argument("--channel-uses", type=int, default=None, help="complex channel symbols per image, e.g. 512 (AMP-SC 4-bit, DeepJSCC 1/6 on CIFAR-10) or 128 (JCM)")
    budget.add_argument("--ratio", default=None, help="bandwidth ratio: channel uses per image / values per image (3HW), e.g. 1/6")
    baseline.add_argument("--snr", default="-6:24:3", help=SNR_RANGE_HELP + ", Es/N0 per complex symbol (default -6:24:3)")
    baseline.add_argument("--channel", default="awgn", help="awgn, rayleigh, rayleigh-block, mimo-8x4-svd, ... (default awgn)")
    baseline.add_argument("--dataset", choices=REFERENCE_DATASETS, default="cifar10", help="cifar10 test images or kodak24 256x256 center crops (default cifar10)")
    baseline.add_argument("--data", default=None, help="data root (default $DIGISEM_DATA) or 'samples' for the bundled CIFAR-10 images")
    baseline.add_argument("--limit", type=int, default=None, help="only the first N test images (class-balanced for CIFAR-10)")
    baseline.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    baseline.add_argument("--out", default=None, help="output folder (default runs/baseline-<codec>-<dataset>-<channel uses>)")
    baseline.add_argument("--quiet", action="store_true", help="no progress bar")
    baseline.set_defaults(func=command_baseline)

    demo = verbs.add_parser("demo", help="pretrained AMP-SC, SoftHe22, JCM and SCDM on the bundled images over real links", description=command_demo.__doc__)
    demo.add_argument("--out", default="digisem-demo", help="output folder (default digisem-demo)")
    demo.add_argument("--snr", default="0:18:3", help=SNR_RANGE_HELP + ", Eb/N0 of the bit-level systems (default 0:18:3; JCM/SCDM use Es/N0 -18:18:6)")
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.add_argument("--quiet", action="store_true", help="no progress bars")
    demo.set_defaults(func=command_demo)

    zoo_verb = verbs.add_parser("zoo", help="list the bundled pretrained models", description=command_zoo.__doc__)
    zoo_verb.set_defaults(func=command_zoo)

    attack = verbs.add_parser("attack", help="clean vs attacked accuracy of a pretrained classifier under semantic noise", description=command_attack.__doc__)
    attack.add_argument("model", help="zoo name (vqvae-fim-at-cifar10, jscc-cifar10), run folder or weights file")
    attack.add_argument("--eps", type=float, default=0.016, help="budget of the semantic noise on images in [0, 1]: L-infinity (default 0.016, the paper's), L2 for pgd-l2 (e.g. 0.5)")
    attack.add_argument("--attack", choices=ATTACK_CHOICES, default="ifgsm",
                        help="ifgsm (eq. 7, default), fgsm (eq. 6), pgd (random start), pgd-l2 (L2 ball) or patch (a free square of --patch-size pixels)")
    attack.add_argument("--steps", type=int, default=5, help="K iterations of ifgsm/pgd/pgd-l2/patch (default 5)")
    attack.add_argument("--step", type=float, default=None, help="alpha per iteration (default 1.25 eps / K, so K alpha > eps; 0.25 for patch)")
    attack.add_argument("--patch-size", type=int, default=8, help="side in pixels of the patch attack's square (default 8)")
    attack.add_argument("--patch-at", type=int, nargs=2, metavar=("TOP", "LEFT"), default=None,
                        help="put the patch at the same place in every image, in pixels (default: a random place per image)")
    attack.add_argument("--snr", type=float, default=3.0, help="Es/N0 in dB per complex symbol of the model's link (default 3)")
    attack.add_argument("--data", default=None, help="data root holding CIFAR-10 (default $DIGISEM_DATA) or 'samples' for the bundled images")
    attack.add_argument("--limit", type=int, default=None, help="attack only the first N test images (class-balanced)")
    attack.add_argument("--batch-size", type=int, default=100, help="images per batch (default 100)")
    attack.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    attack.add_argument("--out", default="runs/attack", help="output folder (default runs/attack)")
    attack.add_argument("--quiet", action="store_true", help="no progress bar")
    attack.set_defaults(func=command_attack)

    send = verbs.add_parser("send", help="send one image through a pretrained system", description=command_send.__doc__)
    send.add_argument("image", help="image file (PNG, JPEG, ...)")
    send.add_argument("--model", default="ampsc-cifar10-4bit", help="zoo name, run folder or weights file (default ampsc-cifar10-4bit)")
    send.add_argument("--snr", type=float, default=5.0, help="SNR in dB in the system's convention: Eb/N0 for AMP-SC, Es/N0 per complex symbol otherwise (default 5)")
    send.add_argument("--channel", default="awgn", help="a link spec, as digisem eval --channel (default awgn: the real 16-QAM link for bit payloads)")
    send.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    send.add_argument("--out", default="received.png", help="output PNG (default received.png)")
    send.add_argument("--quiet", action="store_true", help="no progress bar (shown for images of more than 256 blocks)")
    send.set_defaults(func=command_send)

    download = verbs.add_parser("download", help="download a dataset (cifar10)", description=command_download.__doc__)
    download.add_argument("dataset", choices=("cifar10",), help="dataset to fetch")
    download.add_argument("--root", default=None, help="data folder (default: $DIGISEM_DATA)")
    download.set_defaults(func=command_download)

    plot = verbs.add_parser("plot", help="plot several results JSON files on one figure", description=command_plot.__doc__)
    plot.add_argument("results", nargs="+", help="results JSON files")
    plot.add_argument("--metric", default=None, help="ber, bler, psnr, ssim, ms_ssim, accuracy (default: ber if present, else psnr)")
    plot.add_argument("--out", default="plot.png", help="PNG file (default plot.png)")
    plot.set_defaults(func=command_plot)

    app = verbs.add_parser("app", help="an interactive page in the browser (needs the app extra: pip install -e \".[app]\")", description=command_app.__doc__)
    app.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1)")
    app.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    app.set_defaults(func=command_app)
    return parser


SNR_OPTIONS = ("--snr", "--grid-snr")


def join_negative_snr_values(argv: list[str]) -> list[str]:
    """``--snr -18:18:6`` -> ``--snr=-18:18:6``: argparse would read a value starting with ``-`` and
    holding a colon or comma as an option."""
    joined: list[str] = []
    index = 0
    while index < len(argv):
        if argv[index] in SNR_OPTIONS and index + 1 < len(argv) and re.match(r"-[\d.]", argv[index + 1]):
            joined.append(f"{argv[index]}={argv[index + 1]}")
            index += 2
        else:
            joined.append(argv[index])
            index += 1
    return joined


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``digisem`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(join_negative_snr_values(sys.argv[1:] if argv is None else list(argv)))
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from digisem.weights import CheckpointError

    try:
        return args.func(args)
    except BrokenPipeError:
        # the reader of stdout left (`digisem zoo | head`): stop quietly, as Unix tools do
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except (InputError, OSError, CheckpointError) as err:
        print(f"digisem {args.verb}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"digisem {args.verb}: interrupted", file=sys.stderr)
        return 130
    except Exception:
        print(f"digisem {args.verb}: internal error, a bug in digisem (the traceback follows; please report it with the command)", file=sys.stderr)
        raise


if __name__ == "__main__":
    sys.exit(main())
