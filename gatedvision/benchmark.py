"""Model benchmark behind ``tools/benchmark.py``: parameters, multiply-adds, inference latency and
throughput, training-step throughput and peak memory of timm models (gatedvision's and timm's own)
over input resolutions, with gatedvision's kernel backends side by side.

What each number means:

- **GMACs** per image (batch 1, forward, eval mode): ``torch.utils.flop_counter.FlopCounterMode``
  FLOPs / 2. The counter sees matmuls, convolutions and attention (the CPU fused-attention op is
  registered below, torch only knows the CUDA ones); element-wise ops, norms and softmax are not
  counted, as in the papers' "FLOPs" (which are multiply-adds). It counts what runs, so a kernel
  backend that computes more (the ``dense`` neighbourhood path multiplies an HW×HW matrix) reports
  more.
- **Latency** (batch 1) and **throughput** (batch N, inference and a training step: forward,
  cross-entropy, backward, SGD with momentum): ``warmup`` untimed calls, then ``repeats`` timed
  ones; the median and the interquartile range (p25–p75) of the per-call times.
- **Distance to the limit**: the achieved multiply-add rate (GMACs per image × images/s; a training
  step counts 3× the forward's MACs, the usual estimate for forward + backward) beside the
  machine's peak, measured in the same worker by a large matrix multiply (2048² on the CPU, 8192²
  on CUDA; the fastest of at least 5 calls) of the same dtype (float32, or bfloat16 under ``--amp``) on the same threads and device.
  A model near 100 % is bound by the arithmetic; one far below by something else (memory traffic,
  layout copies, small kernels, Python).
- **Peak memory**: the largest increase over the memory in use just before a measurement (weights
  and input batch), warm-up and repeats included, so the training step's gradients and momentum
  buffers count. On CUDA it is
  ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``. On CPU it is the kernel's
  resident-set high-water mark (``VmHWM``), reset to the current RSS through
  ``/proc/self/clear_refs`` right before the measurement: exact, nothing is sampled or missed.
  Before the reset ``malloc_trim`` hands memory that glibc keeps after earlier measurements back to
  the system; otherwise a later measurement could reuse those already-resident pages and report
  too little. Each (model, resolution) runs in a fresh process, so models never share a heap.

Workers run with ``OMP_WAIT_POLICY=PASSIVE`` unless it is set: on a machine shared with other jobs,
spinning OpenMP threads make CPU timings several times slower and erratic; on a quiet machine the
policy changes little.

Each (model, resolution) runs in its own subprocess (``python -m gatedvision.benchmark SPEC``);
its kernel backends run one after the other in that process on the same weights, so their ratios
compare like with like. Each backend is selected with ``gatedvision.ops.switch.use_backend`` (the
ops' declared backends are ``gatedvision.ops.switch.KERNELS``).
"""
from __future__ import annotations

import contextlib
import copy
import csv
import ctypes
import difflib
import fnmatch
import gc
import json
import os
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable

import timm
import torch
import torch.nn.functional as F
from torch.utils import flop_counter

import gatedvision  # noqa: F401  (registers gatedvision's models)
from gatedvision.ops.linear_attention import bidirectional_gla
from gatedvision.ops.neighborhood import na2d_av
from gatedvision.ops.routing import routed_attention
from gatedvision.ops.switch import KERNELS, Kernel, use_backend

__all__ = ['SWITCHES', 'BenchSpec', 'KernelSwitch', 'PeakMemory', 'count_macs', 'measure_model',
           'model_backends', 'resolve_models', 'run', 'write_outputs']

# torch's counter knows the CUDA fused-attention ops only; on CPU F.scaled_dot_product_attention
# runs this one and its matmuls would go uncounted (DeiT, Swin, BiFormer, ConViT).
_CPU_SDPA = torch.ops.aten._scaled_dot_product_flash_attention_for_cpu
if _CPU_SDPA not in flop_counter.flop_registry:
    flop_counter.register_flop_formula(_CPU_SDPA, get_raw=True)(flop_counter.sdpa_flop)

_ROW = '@@row '  # prefix of the worker's result lines on stdout


@dataclass(frozen=True)
class KernelSwitch:
    """A gatedvision op and its backends as declared in :data:`gatedvision.ops.switch.KERNELS`."""
    op: Callable
    kernel: Kernel

    @property
    def backends(self) -> tuple[str, ...]:
        return self.kernel.backends


SWITCHES = (KernelSwitch(bidirectional_gla, KERNELS['gla']), KernelSwitch(na2d_av, KERNELS['na2d_av']),
            KernelSwitch(routed_attention, KERNELS['routed_attention']))
BACKEND_NAMES = ('auto', 'all') + tuple(b for s in SWITCHES for b in s.backends)


@dataclass
class BenchSpec:
    """Settings of one benchmark run (the command line of ``tools/benchmark.py``)."""
    device: str = 'cpu'
    threads: int = 2
    batch_size: int = 8
    repeats: int = 10
    warmup: int = 3
    amp: bool = False
    channels_last: bool = False
    backends: tuple[str, ...] = ('auto',)
    timeout: float = 3600.0
    mem_limit_gb: float | None = None
    compile: str | None = None  # a torch.compile backend: eager vs compiled, side by side
    onnx: bool = False  # PyTorch eager vs ONNX Runtime (CPU) inference, side by side
    modes: tuple[str, ...] = ('infer_b1', 'infer_bn', 'train_bn')  # latency, throughput, training


def resolve_models(patterns: list[str]) -> list[str]:
    """Model names for names or wildcards (``'hornet_tiny_*'``), gatedvision's and timm's.

    Raises:
        ValueError: a name timm does not know, or a wildcard matching nothing; names the closest.
    """
    names: list[str] = []
    everything = timm.list_models()
    for pat in patterns:
        if any(c in pat for c in '*?['):
            hits = fnmatch.filter(everything, pat)
        else:
            hits = [pat] if timm.is_model(pat) else []
        if not hits:
            close = difflib.get_close_matches(pat.replace('*', ''), everything, n=5, cutoff=0.6)
            hint = f'; closest names: {", ".join(close)}' if close else ''
            raise ValueError(f"unknown model '{pat}': no timm or gatedvision model matches{hint}")
        names += [h for h in hits if h not in names]
    return names


def model_backends(name: str, requested: tuple[str, ...]) -> list[tuple[str, KernelSwitch | None]]:
    """(backend, switch) rows for a model: ``'-'`` when its module uses no switchable op, else the
    requested backends of its ops (``'all'``: every one; ``'auto'``: the ops' own choice)."""
    module = sys.modules[timm.models.model_entrypoint(name).__module__]
    used = [s for s in SWITCHES if any(v is s.op for v in vars(module).values())]
    if not used:
        return [('-', None)]
    rows: list[tuple[str, KernelSwitch | None]] = []
    for req in requested:
        for s in used:
            for b in s.backends if req == 'all' else [req]:
                if (b in s.backends or b == 'auto') and all(r[0] != b for r in rows):
                    rows.append((b, None if b == 'auto' else s))
    return rows or [('auto', None)]


def count_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    """Multiply-adds of one forward (FlopCounterMode FLOPs / 2)."""
    with torch.no_grad(), flop_counter.FlopCounterMode(display=False) as counter:
        model(x)
    return counter.get_total_flops() // 2


def _proc_status_kib(key: str) -> int:
    with open('/proc/self/status') as f:
        for line in f:
            if line.startswith(key + ':'):
                return int(line.split()[1])
    raise KeyError(key)


class PeakMemory:
    """Peak memory increase (bytes, in ``.peak``; None where unmeasurable) over a ``with`` block.

    See the module docstring: CUDA allocator peak on GPUs, the reset RSS high-water mark on CPU.
    """

    def __init__(self, device: str):
        self.device, self.base, self.peak = device, 0, None

    def __enter__(self):
        gc.collect()
        if self.device == 'cuda':
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            self.base = torch.cuda.memory_allocated()
            return self
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None).malloc_trim(0)  # glibc only
        try:
            with open('/proc/self/clear_refs', 'w') as f:
                f.write('5')  # VmHWM := VmRSS
            self.base = _proc_status_kib('VmRSS') * 1024
        except OSError:  # not Linux, or /proc is read-only: no exact peak to offer
            self.base = None
        return self

    def __exit__(self, *exc):
        if self.device == 'cuda':
            torch.cuda.synchronize()
            self.peak = torch.cuda.max_memory_allocated() - self.base
        elif self.base is not None:
            self.peak = max(_proc_status_kib('VmHWM') * 1024 - self.base, 0)
        return False


def timed(fn: Callable, device: str, warmup: int, repeats: int) -> list[float]:
    """Seconds per call of ``repeats`` calls after ``warmup`` untimed ones (CUDA synchronised): the
    one timing loop of the benchmark tools. Not ``torch.utils.benchmark.Timer``: its ``timeit`` runs
    two untimed calls before every measurement (three times the cost of a one-second model call),
    and ``blocked_autorange`` reports block means, where the tables need per-call quartiles."""
    sync = torch.cuda.synchronize if device == 'cuda' else (lambda: None)
    for _ in range(warmup):
        fn()
    sync()
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return times


PEAK_MATMUL = {'cpu': 2048, 'cuda': 8192}  # square sizes large enough to reach the peak


def matmul_peak_gmac_s(device: str, amp: bool, warmup: int, repeats: int) -> float:
    """The machine's multiply-add rate on a large square matmul of the benchmark's dtype (GMAC/s),
    on this process's threads and device: the reference the models' rates are a fraction of."""
    n = PEAK_MATMUL[torch.device(device).type]
    g = torch.Generator(device=device).manual_seed(0)
    dtype = torch.bfloat16 if amp else torch.float32
    a, b = (torch.randn(n, n, device=device, dtype=dtype, generator=g) for _ in range(2))
    times = timed(lambda: torch.mm(a, b), device, max(warmup, 2), max(repeats, 5))
    return n ** 3 / min(times) / 1e9  # a peak: the fastest call (the median moved by 1.5x between workers)


def _quartiles(times: list[float]) -> tuple[float, float, float]:
    if len(times) < 2:
        return times[0], times[0], times[0]
    q1, q2, q3 = statistics.quantiles(times, n=4, method='inclusive')
    return q1, q2, q3


def describe_error(e: BaseException) -> str:
    """One line: the exception and, for a bare assert, the failing source line outside torch."""
    msg = str(e).strip().splitlines()[0] if str(e).strip() else ''
    frames = [f for f in traceback.extract_tb(e.__traceback__)
              if f'{os.sep}torch{os.sep}' not in f.filename]
    if not msg and frames:
        f = frames[-1]
        msg = f'{Path(f.filename).parent.name}/{Path(f.filename).name}:{f.lineno} `{f.line}`'
    text = f'{type(e).__name__}: {msg}' if msg else type(e).__name__
    return text if len(text) <= 200 else text[:197] + '...'


@contextlib.contextmanager
def _backend(backend: str, switch: KernelSwitch | None):
    """Select ``backend`` for ``switch``'s op; every other op at ``'auto'`` (whatever the environment says)."""
    with contextlib.ExitStack() as stack:
        for s in SWITCHES:
            stack.enter_context(use_backend(s.kernel.name, backend if s is switch else 'auto'))
        yield


def _build(name: str, res: int, device: str, channels_last: bool):
    """The model, its MACs at ``res`` and a note; retries with ``img_size=res`` for models built
    for one input size (ViT, Swin) and re-raises the first error when that does not help."""
    def make(**kwargs):
        m = timm.create_model(name, pretrained=False, **kwargs).to(device).eval()
        if channels_last:
            m = m.to(memory_format=torch.channels_last)
        return m, count_macs(m, _batch(1, res, device, channels_last))

    try:
        return (*make(), '')
    except Exception as first:  # noqa: BLE001  (any failure: try the fixed-size route)
        try:
            return (*make(img_size=res), f'built with img_size={res}')
        except Exception:  # noqa: BLE001
            raise first from None


def _batch(n: int, res: int, device: str, channels_last: bool) -> torch.Tensor:
    x = torch.randn(n, 3, res, res, device=device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def _skip_reason(backend: str, switch: KernelSwitch | None, device: str) -> str:
    if switch is None or backend not in switch.kernel.packages:  # these backends are CUDA packages
        return ''
    if device != 'cuda':
        return f'{backend}: CUDA only (Triton kernels); run with --device cuda'
    import importlib.util
    if importlib.util.find_spec(backend) is None:  # the backend is named after the module it imports
        return f'{backend}: {backend} is not installed (pip install {switch.kernel.packages[backend]})'
    return ''


def measure_model(name: str, res: int, spec: BenchSpec, emit: Callable[[dict], None]) -> None:
    """Measure one model at one resolution for each of its backends; ``emit`` gets each row."""
    torch.manual_seed(0)
    dev, n = spec.device, spec.batch_size
    base = {'model': name, 'resolution': res, 'device': dev, 'threads': spec.threads,
            'batch_size': n, 'dtype': 'amp-bf16' if spec.amp else 'fp32',
            'channels_last': spec.channels_last}
    rows = model_backends(name, spec.backends)
    try:
        with _backend('auto', None):
            model, macs, built = _build(name, res, dev, spec.channels_last)
    except Exception as e:  # noqa: BLE001  (the model cannot take this resolution: a row says why)
        for backend, _ in rows:
            emit(dict(base, backend=backend, note=f'cannot run at {res}x{res}: {describe_error(e)}'))
        return
    params = sum(p.numel() for p in model.parameters()) / 1e6
    peak_rate = matmul_peak_gmac_s(dev, spec.amp, spec.warmup, spec.repeats)
    weights = copy.deepcopy(model.state_dict())
    amp = ((lambda: torch.autocast(torch.device(spec.device).type, dtype=torch.bfloat16)) if spec.amp
           else contextlib.nullcontext)
    for backend, switch in rows:
        row = dict(base, backend=backend, params_m=params, peak_gmac_s=peak_rate, note=built)
        skip = _skip_reason(backend, switch, dev)
        if skip:
            emit(dict(row, note=skip))
            continue
        notes = [built] if built else []
        with _backend(backend, switch):
            try:
                if switch is not None:  # a backend may compute more (or fail at this size)
                    macs = count_macs(model, _batch(1, res, dev, spec.channels_last))
                row['gmacs'] = macs / 1e9
            except Exception as e:  # noqa: BLE001  (reported in the row)
                emit(dict(row, note=describe_error(e)))
                continue
            for mode in spec.modes:
                try:
                    times, peak = _measure_mode(model, mode, res, spec, amp)
                except Exception as e:  # noqa: BLE001  (out of memory, a backend refusing a shape)
                    notes.append(f'{mode}: {describe_error(e)}')
                    if dev == 'cuda':
                        torch.cuda.empty_cache()
                    continue
                q1, q2, q3 = _quartiles(times)
                if mode == 'infer_b1':
                    row.update(infer_b1_ms=q2 * 1e3, infer_b1_ms_p25=q1 * 1e3,
                               infer_b1_ms_p75=q3 * 1e3)
                else:
                    row.update({f'{mode}_img_s': n / q2, f'{mode}_img_s_p25': n / q3,
                                f'{mode}_img_s_p75': n / q1})
                    rate = macs / 1e9 * n / q2 * (3 if mode == 'train_bn' else 1)  # backward: ~2x forward
                    row.update({f'{mode}_gmac_s': rate, f'{mode}_of_peak': rate / peak_rate})
                row[f'{mode}_peak_mib'] = None if peak is None else peak / 2 ** 20
            if spec.compile:
                model.load_state_dict(weights)
                try:
                    row.update(compare_compiled(model, res, spec, amp))
                except Exception as e:  # noqa: BLE001  (a model the backend cannot compile: the row says so)
                    notes.append(f'compile: {describe_error(e)}')
                torch._dynamo.reset()  # the next backend's kernels are traced afresh
            if spec.onnx:
                model.load_state_dict(weights)
                try:
                    row.update(compare_onnx(model, res, spec))
                except Exception as e:  # noqa: BLE001  (a model that does not export: the row says so)
                    notes.append(f'onnx: {describe_error(e)}')
        model.load_state_dict(weights)  # the training steps moved them; every backend starts equal
        emit(dict(row, note='; '.join(notes)))


def _step(model, mode, x, amp):
    """One call of ``mode`` on batch ``x``: inference, or forward + cross-entropy + backward + SGD."""
    if mode != 'train_bn':
        def infer():
            with torch.inference_mode(), amp():
                return model(x)
        return infer
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)
    classes = getattr(model, 'num_classes', 0)
    target = torch.randint(0, max(classes, 1), (x.shape[0],), device=x.device)

    def train():
        opt.zero_grad(set_to_none=True)
        with amp():
            out = model(x).float()
        loss = F.cross_entropy(out, target) if classes else out.mean()  # headless: any loss
        loss.backward()
        opt.step()
    return train


def _measure_mode(model, mode, res, spec, amp):
    x = _batch(1 if mode == 'infer_b1' else spec.batch_size, res, spec.device, spec.channels_last)
    model.train(mode == 'train_bn')
    step = _step(model, mode, x, amp)
    try:
        with PeakMemory(spec.device) as mem:
            times = timed(step, spec.device, spec.warmup, spec.repeats)
    finally:
        model.eval()
        model.zero_grad(set_to_none=True)
    return times, mem.peak


def alternating_medians(steps, warmup: int, repeats: int, sync=lambda: None) -> list:
    """The median seconds of each of ``steps`` over ``repeats`` calls after ``warmup``, the steps
    called in turn so that every one sees the same machine (``sync``: after each call, CUDA's)."""
    times: list[list[float]] = [[] for _ in steps]
    for i in range(warmup + repeats):
        for step, mine in zip(steps, times):
            t = time.perf_counter()
            step()
            sync()
            if i >= warmup:
                mine.append(time.perf_counter() - t)
    return [statistics.median(ts) for ts in times]


def compare_compiled(model, res: int, spec: BenchSpec, amp) -> dict:
    """Eager against ``torch.compile(model, backend=spec.compile)`` at batch N, inference and
    training step: the first compiled call's seconds (the compilation, ``*_compile_s``), then
    ``warmup`` + ``repeats`` calls of each, alternating eager and compiled so that both see the
    same machine; the medians' ratio is ``*_speedup``. ``compiled_max_diff``: the largest absolute
    difference of the compiled inference output from eager's."""
    sync = torch.cuda.synchronize if spec.device == 'cuda' else (lambda: None)
    compiled = torch.compile(model, backend=spec.compile)
    x = _batch(spec.batch_size, res, spec.device, spec.channels_last)
    out: dict = {}
    for mode in ('infer_bn', 'train_bn'):
        model.train(mode == 'train_bn')
        steps = [_step(model, mode, x, amp), _step(compiled, mode, x, amp)]
        t = time.perf_counter()
        result = steps[1]()  # the first call compiles
        sync()
        out[f'{mode}_compile_s'] = time.perf_counter() - t
        if mode == 'infer_bn':
            out['compiled_max_diff'] = (result.float() - steps[0]().float()).abs().max().item()
        eager, fast = alternating_medians(steps, spec.warmup, spec.repeats, sync)
        out.update({f'{mode}_compiled_img_s': spec.batch_size / fast, f'{mode}_speedup': eager / fast})
        model.eval()
        model.zero_grad(set_to_none=True)
    return out


def compare_onnx(model, res: int, spec: BenchSpec) -> dict:
    """PyTorch eager inference against ONNX Runtime's (CPU, ``spec.threads`` intra-op threads) on
    the model exported by torch's dynamo exporter at batch N: the export's seconds, then ``warmup``
    + ``repeats`` calls of each, alternating; ``ort_speedup`` is the medians' ratio, ``ort_max_diff``
    the largest absolute difference of ONNX Runtime's output from PyTorch's."""
    import tempfile

    import onnxruntime as ort
    model.eval()
    x = _batch(spec.batch_size, res, 'cpu', False)
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / 'model.onnx')
        t = time.perf_counter()
        torch.onnx.export(model.cpu(), (x,), path, dynamo=True, external_data=True)
        export_s = time.perf_counter() - t
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.inter_op_num_threads = spec.threads, 1
        # its threads would otherwise spin between calls and slow the alternating PyTorch calls down
        options.add_session_config_entry('session.intra_op.allow_spinning', '0')
        session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
        name, feed = session.get_inputs()[0].name, x.numpy()

        def eager():
            with torch.inference_mode():
                return model(x)
        steps = [eager, lambda: session.run(None, {name: feed})[0]]
        diff = float(abs(steps[1]() - steps[0]().numpy()).max())
        eager_s, ort_s = alternating_medians(steps, spec.warmup, spec.repeats)
    model.to(spec.device)
    return {'onnx_export_s': export_s, 'infer_bn_ort_img_s': spec.batch_size / ort_s,
            'ort_speedup': eager_s / ort_s, 'ort_max_diff': diff, 'infer_bn_eager_img_s': spec.batch_size / eager_s}


# ---- the driver: one subprocess per (model, resolution), outputs rewritten after each ----

COLUMNS = ['model', 'backend', 'resolution', 'device', 'threads', 'dtype', 'channels_last',
           'batch_size', 'params_m', 'gmacs', 'peak_gmac_s',
           'infer_b1_ms', 'infer_b1_ms_p25', 'infer_b1_ms_p75', 'infer_b1_peak_mib',
           'infer_bn_img_s', 'infer_bn_img_s_p25', 'infer_bn_img_s_p75', 'infer_bn_peak_mib',
           'infer_bn_gmac_s', 'infer_bn_of_peak',
           'train_bn_img_s', 'train_bn_img_s_p25', 'train_bn_img_s_p75', 'train_bn_peak_mib',
           'train_bn_gmac_s', 'train_bn_of_peak',
           'compiled_max_diff', 'infer_bn_compile_s', 'infer_bn_compiled_img_s', 'infer_bn_speedup',
           'train_bn_compile_s', 'train_bn_compiled_img_s', 'train_bn_speedup',
           'onnx_export_s', 'infer_bn_eager_img_s', 'infer_bn_ort_img_s', 'ort_speedup', 'ort_max_diff',
           'note']


def _mem_available_bytes() -> int | None:
    try:
        with open('/proc/meminfo') as f:
            return next(int(line.split()[1]) * 1024 for line in f if line.startswith('MemAvailable'))
    except (OSError, StopIteration):
        return None


def _run_one(name: str, res: int, spec: BenchSpec) -> list[dict]:
    """Run ``measure_model`` in a fresh process; a crash or a timeout becomes a row's note."""
    root = str(Path(__file__).resolve().parents[1])
    env = dict(os.environ, OMP_NUM_THREADS=str(spec.threads), MKL_NUM_THREADS=str(spec.threads),
               PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get('PYTHONPATH')])))
    # Spinning OpenMP workers of two busy processes on the same cores slow each other down several
    # fold (hornet_tiny_7x7 at 224 on 2 shared cores: 2.1 s instead of 0.18 s); sleeping ones don't.
    env.setdefault('OMP_WAIT_POLICY', 'PASSIVE')
    cmd = [sys.executable, '-m', 'gatedvision.benchmark', json.dumps([name, res, asdict(spec)])]
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=spec.timeout,
                           check=False)
        out, err, failure = p.stdout, p.stderr, (f'worker exited with code {p.returncode}'
                                                 if p.returncode else '')
    except subprocess.TimeoutExpired as e:
        out = e.stdout.decode() if isinstance(e.stdout, bytes) else (e.stdout or '')
        err, failure = '', f'timed out after {spec.timeout:.0f} s (--timeout)'
    rows = [json.loads(line[len(_ROW):]) for line in out.splitlines() if line.startswith(_ROW)]
    done = {r['backend'] for r in rows}
    if failure:
        last = [line for line in err.strip().splitlines() if line.strip()][-1:]
        note = failure + (f': {last[0].strip()}' if last else '')
        rows += [{'model': name, 'resolution': res, 'device': spec.device, 'backend': b,
                  'note': note} for b, _ in model_backends(name, spec.backends) if b not in done]
    return rows


def _fmt(v, digits: int = 1) -> str:
    return '–' if v is None or v == '' else f'{v:.{digits}f}'


def _spread(row: dict, key: str, digits: int = 1) -> str:
    v = row.get(key)
    if v is None:
        return '–'
    return f'{v:.{digits}f} ({row[key + "_p25"]:.{digits}f}–{row[key + "_p75"]:.{digits}f})'


def _rate(row: dict, mode: str) -> str:
    """'GMAC/s (% of the matmul peak)'."""
    if row.get(f'{mode}_gmac_s') is None:
        return '–'
    return f"{row[f'{mode}_gmac_s']:.0f} ({100 * row[f'{mode}_of_peak']:.0f} %)"


def markdown_table(rows: list[dict], batch_size: int) -> str:
    n = batch_size
    lines = [(f'| model | backend | res | params (M) | GMACs | latency b1 (ms) | infer b{n} (img/s) '
              f'| train b{n} (img/s) | infer b{n} GMAC/s (of peak) | train b{n} GMAC/s (of peak) '
              f'| peak infer b{n} (MiB) | peak train b{n} (MiB) | note |'),
             '|---|---|---|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        cells = [r['model'], r['backend'], f"{r['resolution']}²", _fmt(r.get('params_m'), 2),
                 _fmt(r.get('gmacs'), 2), _spread(r, 'infer_b1_ms'), _spread(r, 'infer_bn_img_s'),
                 _spread(r, 'train_bn_img_s', 2), _rate(r, 'infer_bn'), _rate(r, 'train_bn'),
                 _fmt(r.get('infer_bn_peak_mib'), 0), _fmt(r.get('train_bn_peak_mib'), 0), r.get('note') or '']
        lines.append('| ' + ' | '.join(str(c).replace('|', '\\|') for c in cells) + ' |')
    if any(r.get('infer_bn_speedup') for r in rows):
        lines += ['', compiled_table(rows, batch_size)]
    if any(r.get('ort_speedup') for r in rows):
        lines += ['', onnx_table(rows, batch_size)]
    return '\n'.join(lines)


def onnx_table(rows: list[dict], batch_size: int) -> str:
    """PyTorch eager against ONNX Runtime (``--onnx``): the same process, alternating calls, batch N."""
    n = batch_size
    lines = [f'| model | res | export (s) | infer b{n} PyTorch → ONNX Runtime (img/s) | × | max abs diff |',
             '|---|---|---|---|---|---|']
    for r in rows:
        if r.get('ort_speedup'):
            lines.append(f"| {r['model']} | {r['resolution']}² | {r['onnx_export_s']:.0f} | "
                         f"{r['infer_bn_eager_img_s']:.1f} → {r['infer_bn_ort_img_s']:.1f} | "
                         f"{r['ort_speedup']:.2f} | {r['ort_max_diff']:.1e} |")
    return '\n'.join(lines)


def compiled_table(rows: list[dict], batch_size: int) -> str:
    """Eager against compiled (``--compile``): the same process, alternating calls, batch N."""
    n = batch_size
    lines = [f'| model | backend | res | compile infer / train (s) | infer b{n} eager → compiled (img/s) | × '
             f'| train b{n} eager → compiled (img/s) | × | max abs diff |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        if not r.get('infer_bn_speedup'):
            continue
        eager = [r[f'{m}_compiled_img_s'] / r[f'{m}_speedup'] for m in ('infer_bn', 'train_bn')]
        cells = [r['model'], r['backend'], f"{r['resolution']}²",
                 f"{r['infer_bn_compile_s']:.0f} / {r['train_bn_compile_s']:.0f}",
                 f"{eager[0]:.1f} → {r['infer_bn_compiled_img_s']:.1f}", f"{r['infer_bn_speedup']:.2f}",
                 f"{eager[1]:.2f} → {r['train_bn_compiled_img_s']:.2f}", f"{r['train_bn_speedup']:.2f}",
                 f"{r['compiled_max_diff']:.1e}"]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot(rows: list[dict], path: Path) -> None:
    """Throughput and peak memory against resolution (log-log), one colour per model/backend;
    solid lines inference at batch N, dashed lines the training step."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    fig, axes = plt.subplots(1, 2, figsize=(13, 5))
    series: dict[str, list[dict]] = {}
    for r in rows:
        label = r['model'] if r['backend'] in ('-', 'auto') else f"{r['model']} [{r['backend']}]"
        series.setdefault(label, []).append(r)
    for i, (label, rs) in enumerate(series.items()):
        color = plt.cm.tab20(i % 20)
        rs = sorted(rs, key=lambda r: r['resolution'])
        for ax, keys in zip(axes, [('infer_bn_img_s', 'train_bn_img_s'),
                                   ('infer_bn_peak_mib', 'train_bn_peak_mib')]):
            for key, style in zip(keys, ['o-', 's--']):
                pts = [(r['resolution'], r[key]) for r in rs if r.get(key)]
                if pts:
                    ax.plot(*zip(*pts), style, color=color,
                            label=label if style == 'o-' else None)
    sizes = sorted({r['resolution'] for r in rows})
    for ax, ylabel in zip(axes, ['throughput (img/s)', 'peak memory increase (MiB)']):
        ax.set_xscale('log', base=2)
        ax.set_yscale('log')
        ax.set_xticks(sizes, [str(s) for s in sizes])
        ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        ax.set_xlabel('input resolution (px, square)')
        ax.set_ylabel(ylabel)
        ax.grid(True, which='both', alpha=0.3)
    axes[0].set_title('throughput (solid: inference, dashed: training step)')
    axes[1].set_title('peak memory (solid: inference, dashed: training step)')
    handles, labels = axes[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc='center left', bbox_to_anchor=(1.0, 0.5), fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches='tight')
    plt.close(fig)


def machine_description(spec: BenchSpec) -> str:
    if spec.device == 'cuda':
        what = torch.cuda.get_device_name()
    else:
        what = 'CPU'
        with contextlib.suppress(OSError), open('/proc/cpuinfo') as f:
            what = next((line.split(':', 1)[1].strip() for line in f
                         if line.startswith('model name')), what)
        what += (f', {spec.threads} threads (of {os.cpu_count()} cores), '
                 f'OMP_WAIT_POLICY={os.environ.get("OMP_WAIT_POLICY", "PASSIVE")}')
    return f'{what}; torch {torch.__version__}, timm {timm.__version__}'


def write_outputs(rows: list[dict], out_dir: Path, spec: BenchSpec, command: str) -> dict:
    """Write ``benchmark.md``, ``benchmark.csv`` and ``benchmark.png``; returns their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {k: out_dir / f'benchmark.{k}' for k in ('md', 'csv', 'png')}
    n = spec.batch_size
    header = (f'Benchmark on {machine_description(spec)}; '
              f'{"AMP bfloat16" if spec.amp else "float32"}'
              f'{", channels-last" if spec.channels_last else ""}; batch 1 and {n}; '
              f'{spec.warmup} warm-up + {spec.repeats} timed calls, median (p25–p75).\n'
              'GMACs: multiply-adds per image (FlopCounterMode FLOPs / 2), the figure papers call '
              '"FLOPs". Peak: largest memory increase over the weights and input during the '
              'measurement, gradients and momentum buffers of the training step included (' + ('CUDA allocator' if spec.device == 'cuda' else 'process RSS')
              + '). Training step: forward + cross-entropy + backward + SGD. GMAC/s: GMACs × img/s (a '
              'training step counts 3× the forward), and its fraction of the peak of a '
              f'{PEAK_MATMUL[torch.device(spec.device).type]}² matmul of the same dtype on the same threads'
              + (f' ({rows[0]["peak_gmac_s"]:.0f} GMAC/s in the first run)' if rows and rows[0].get('peak_gmac_s') else '')
              + f'.\n\n`{command}`\n')
    paths['md'].write_text(header + '\n' + markdown_table(rows, n) + '\n')
    with open(paths['csv'], 'w', newline='') as f:
        w = csv.DictWriter(f, COLUMNS, extrasaction='ignore')
        w.writeheader()
        w.writerows(rows)
    plot(rows, paths['png'])
    return paths


def run(models: list[str], resolutions: list[int], spec: BenchSpec, out_dir: Path,
        command: str = '') -> list[dict]:
    """Benchmark every (model, resolution); outputs are rewritten after each, and a
    KeyboardInterrupt stops the run keeping the rows done so far."""
    from tqdm import tqdm

    if spec.device == 'cpu' and spec.mem_limit_gb is None:
        avail = _mem_available_bytes()
        spec.mem_limit_gb = avail * 0.8 / 2 ** 30 if avail else None
    rows: list[dict] = []
    jobs = [(m, r) for m in models for r in resolutions]
    bar = tqdm(jobs, desc='benchmark', unit='run', file=sys.stderr, dynamic_ncols=True)
    try:
        for name, res in bar:
            bar.set_postfix_str(f'{name} @ {res}')
            rows += _run_one(name, res, spec)
            write_outputs(rows, out_dir, spec, command)
    except KeyboardInterrupt:
        print(f'\ninterrupted: keeping the {len(rows)} rows done', file=sys.stderr)
    finally:
        bar.close()
        write_outputs(rows, out_dir, spec, command)
    return rows


def _worker(argv: list[str]) -> None:
    name, res, spec_dict = json.loads(argv[0])
    spec = BenchSpec(**{**spec_dict, 'backends': tuple(spec_dict['backends'])})
    torch.set_num_threads(spec.threads)
    if spec.device == 'cpu' and spec.mem_limit_gb:
        # a row needing more fails with an allocation error instead of pushing the machine to swap
        # or the OOM killer (the dense neighbourhood path at 512² asks for gigabytes)
        import resource
        limit = int(spec.mem_limit_gb * 2 ** 30)
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))

    def emit(row):
        print(_ROW + json.dumps(row), flush=True)

    measure_model(name, res, spec, emit)


if __name__ == '__main__':
    _worker(sys.argv[1:])
