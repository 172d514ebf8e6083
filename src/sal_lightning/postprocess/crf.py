"""Fully connected CRF (Kraehenbuehl and Koltun 2011) through pydensecrf, in process or in a pool.

``dense_crf(image, probs, params)`` refines per-pixel class probabilities with a Gaussian
(smoothness) and a bilateral (appearance) kernel; the unary is ``-log(clip(probs, min_prob, 1))``.
``binary_crf`` does the same for a foreground probability map (two labels).

``CRFPool(processes)`` runs many CRFs in worker processes: ``submit`` returns a
``concurrent.futures.Future`` at once, so a predict loop keeps the accelerator busy while CRFs run
(collect the results later, e.g. in a prediction writer). Workers are started with ``spawn`` (or
``forkserver``), never ``fork``, so the pool is safe in processes that hold CUDA contexts or DDP
process groups; the work function lives at module top level and this module imports only numpy,
so workers start in a fraction of a second and do not import torch. Create one pool per process
(per DDP rank), not inside DataLoader workers (daemonic processes cannot have children).

pydensecrf is an optional dependency (``pip install "sal-lightning[crf]"``), imported when a CRF
runs.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, replace
from types import ModuleType
from typing import Any, Literal

import numpy as np

from sal_lightning._threads import one_thread_worker

Output = Literal["probs", "labels"]
_INSTALL_HINT = 'dense CRF needs pydensecrf: pip install "sal-lightning[crf]"'


@dataclass(frozen=True)
class CRFSettings:
    """Dense CRF parameters (pydensecrf ``DenseCRF2D``, diagonal kernels, symmetric normalisation).

    Defaults are DeepLab's test-time parameters, used by SAL-Net's inference.

    Attributes:
        gaussian_sxy: position standard deviation of the smoothness kernel, in pixels.
        gaussian_compat: weight of the smoothness kernel (Potts compatibility).
        bilateral_sxy: position standard deviation of the appearance kernel, in pixels.
        bilateral_srgb: colour standard deviation of the appearance kernel (0..255 scale).
        bilateral_compat: weight of the appearance kernel.
        iterations: mean-field iterations.
        min_prob: probabilities are clipped to ``[min_prob, 1]`` before ``-log``.
    """

    gaussian_sxy: float = 3.0
    gaussian_compat: float = 3.0
    bilateral_sxy: float = 80.0
    bilateral_srgb: float = 13.0
    bilateral_compat: float = 10.0
    iterations: int = 10
    min_prob: float = 1e-5

    def __post_init__(self) -> None:
        for name in ("gaussian_sxy", "bilateral_sxy", "bilateral_srgb"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"CRFSettings.{name}: expected a positive standard deviation, got {getattr(self, name)}"
                )
        for name in ("gaussian_compat", "bilateral_compat"):
            if not getattr(self, name) >= 0:
                raise ValueError(
                    f"CRFSettings.{name}: expected a non-negative weight, got {getattr(self, name)}"
                )
        if not (isinstance(self.iterations, int) and self.iterations >= 1):
            raise ValueError(f"CRFSettings.iterations: expected an integer >= 1, got {self.iterations!r}")
        if not 0 < self.min_prob < 1:
            raise ValueError(f"CRFSettings.min_prob: expected a value in (0, 1), got {self.min_prob}")

    def scaled(self, factor: float) -> CRFSettings:
        """These parameters with both position standard deviations divided by ``factor``.

        For a CRF on an image downscaled by ``factor`` (SEC runs it at the network's output
        resolution with ``factor = 12``).
        """
        if not factor > 0:
            raise ValueError(f"factor: expected a positive scale, got {factor}")
        return replace(
            self, gaussian_sxy=self.gaussian_sxy / factor, bilateral_sxy=self.bilateral_sxy / factor
        )


#: DeepLab's test-time CRF (Gaussian sxy 3 / compat 3, bilateral sxy 80 / srgb 13 / compat 10, 10 iterations).
DEEPLAB_TEST_CRF = CRFSettings()
#: SEC's training CRF for the constrain loss: DeepLab's parameters with positions divided by 12
#: (Gaussian sxy 0.25 / compat 3, bilateral sxy 6.67 / srgb 13 / compat 10, 10 iterations).
SEC_TRAIN_CRF = DEEPLAB_TEST_CRF.scaled(12.0)


def require_densecrf() -> None:
    """Raise ``ImportError`` with the install command unless pydensecrf imports (checks before work)."""
    _import_densecrf()


def _import_densecrf() -> ModuleType:
    try:
        import pydensecrf.densecrf as dcrf
    except ImportError as error:
        raise ImportError(_INSTALL_HINT) from error
    return dcrf


def _describe(value: object) -> str:
    return f"{value.dtype} {list(value.shape)}" if isinstance(value, np.ndarray) else type(value).__name__


def _check_inputs(image: object, probs: object) -> tuple[np.ndarray, np.ndarray]:
    """Validate ``image: uint8 [H, W, 3]`` and ``probs: float [K, H, W]``; C-contiguous, writable
    arrays out (pydensecrf refuses read-only buffers, such as images decoded by PIL)."""
    if not (isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.shape[2:] == (3,)):
        raise ValueError(f"image: expected a uint8 array [H, W, 3], got {_describe(image)}")
    if not (isinstance(probs, np.ndarray) and np.issubdtype(probs.dtype, np.floating) and probs.ndim == 3):
        raise ValueError(f"probs: expected a float array [K, H, W], got {_describe(probs)}")
    height, width = image.shape[:2]
    if probs.shape[1:] != (height, width):
        raise ValueError(
            f"probs: expected [K, {height}, {width}] to match the image, got {list(probs.shape)}"
        )
    if probs.shape[0] < 2:
        raise ValueError(f"probs: expected at least 2 labels, got {probs.shape[0]}")
    return np.require(image, requirements=["C", "W"]), np.require(probs, np.float32, ["C", "W"])


def _run_crf(image: np.ndarray, probs: np.ndarray, params: CRFSettings) -> np.ndarray:
    """The CRF proper on validated, C-contiguous inputs; ``float32 [K, H, W]``."""
    dcrf = _import_densecrf()
    labels, height, width = probs.shape
    crf = dcrf.DenseCRF2D(width, height, labels)
    unary = -np.log(np.clip(probs, params.min_prob, 1.0)).reshape(labels, -1)
    crf.setUnaryEnergy(np.ascontiguousarray(unary, dtype=np.float32))
    crf.addPairwiseGaussian(sxy=params.gaussian_sxy, compat=params.gaussian_compat)
    crf.addPairwiseBilateral(
        sxy=params.bilateral_sxy, srgb=params.bilateral_srgb, rgbim=image, compat=params.bilateral_compat
    )
    q = crf.inference(params.iterations)
    return np.asarray(q, dtype=np.float32).reshape(labels, height, width)


def dense_crf(image: np.ndarray, probs: np.ndarray, params: CRFSettings = DEEPLAB_TEST_CRF) -> np.ndarray:
    """Refine class probabilities with a dense CRF.

    Args:
        image: uint8 ``[H, W, 3]`` RGB image (the appearance kernel's colours).
        probs: float ``[K, H, W]``, K >= 2, per-pixel class probabilities (need not sum to 1
            exactly; they are clipped to ``[params.min_prob, 1]`` and used as ``-log`` unaries).
        params: kernel parameters, :data:`DEEPLAB_TEST_CRF` by default.

    Returns:
        float32 ``[K, H, W]``: the mean-field marginals, a distribution over K at every pixel.
    """
    image, probs = _check_inputs(image, probs)
    return _run_crf(image, probs, params)


def binary_crf(
    image: np.ndarray, foreground: np.ndarray, params: CRFSettings = DEEPLAB_TEST_CRF
) -> np.ndarray:
    """Two-label dense CRF on a foreground probability map.

    ``image: uint8 [H, W, 3]``, ``foreground: float [H, W]`` in [0, 1]; returns the refined
    foreground probability, float32 ``[H, W]`` (background = 1 - it).
    """
    if not (isinstance(foreground, np.ndarray) and foreground.ndim == 2):
        raise ValueError(f"foreground: expected a float array [H, W] in [0, 1], got {_describe(foreground)}")
    fg = np.clip(foreground.astype(np.float32), 0.0, 1.0)
    return dense_crf(image, np.stack([1.0 - fg, fg]), params)[1]


def _crf_job(image: np.ndarray, probs: np.ndarray, params: CRFSettings, output: Output) -> np.ndarray:
    """Worker entry point (module level, so ``spawn`` workers can unpickle it)."""
    q = _run_crf(image, probs, params)
    if output == "labels":
        return q.argmax(0).astype(np.uint8 if q.shape[0] <= 256 else np.int32)
    return q


class CRFPool:
    """Dense CRFs in worker processes, or in the calling process when ``processes=0``.

    ``submit`` validates its inputs in the caller and returns a ``Future`` (already resolved when
    ``processes=0``); ``map`` keeps the input order. Workers start on the first ``submit``; the
    pool is a context manager, and pickling it (e.g. with a LightningModule) drops the workers,
    which restart on use.

    Args:
        processes: worker processes; 0 runs every CRF in the caller.
        start_method: ``"spawn"`` (default, works everywhere) or ``"forkserver"``.
    """

    def __init__(self, processes: int = 0, start_method: Literal["spawn", "forkserver"] = "spawn") -> None:
        if not (isinstance(processes, int) and processes >= 0):
            raise ValueError(f"processes: expected an integer >= 0, got {processes!r}")
        if start_method not in ("spawn", "forkserver"):
            raise ValueError(f"start_method: expected 'spawn' or 'forkserver', got {start_method!r}")
        self.processes = processes
        self.start_method = start_method
        self._executor: ProcessPoolExecutor | None = None

    def _pool(self) -> ProcessPoolExecutor:
        if self._executor is None:
            _import_densecrf()  # fail here, with the install hint, rather than in a worker
            context = multiprocessing.get_context(self.start_method)
            self._executor = ProcessPoolExecutor(
                max_workers=self.processes, mp_context=context, initializer=one_thread_worker
            )
        return self._executor

    def submit(
        self,
        image: np.ndarray,
        probs: np.ndarray,
        params: CRFSettings = DEEPLAB_TEST_CRF,
        output: Output = "probs",
    ) -> Future[np.ndarray]:
        """Schedule one CRF (arguments as :func:`dense_crf`).

        ``output="probs"`` resolves to float32 ``[K, H, W]``; ``"labels"`` to the argmax
        ``[H, W]`` (uint8 for K <= 256), which is all a label-map writer needs and travels back
        from the worker K times smaller.
        """
        if output not in ("probs", "labels"):
            raise ValueError(f"output: expected 'probs' or 'labels', got {output!r}")
        image, probs = _check_inputs(image, probs)
        if self.processes == 0:
            future: Future[np.ndarray] = Future()
            try:
                future.set_result(_crf_job(image, probs, params, output))
            except Exception as error:
                future.set_exception(error)
            return future
        return self._pool().submit(_crf_job, image, probs, params=params, output=output)

    def map(
        self,
        images: Sequence[np.ndarray],
        probs: Sequence[np.ndarray],
        params: CRFSettings = DEEPLAB_TEST_CRF,
        output: Output = "probs",
    ) -> list[np.ndarray]:
        """CRFs of paired ``images[i]``, ``probs[i]``, in order (arrays ``[N, ...]`` or lists)."""
        if len(images) != len(probs):
            raise ValueError(f"probs: expected one array per image ({len(images)}), got {len(probs)}")
        futures = [self.submit(image, p, params, output) for image, p in zip(images, probs, strict=True)]
        return [future.result() for future in futures]

    def close(self) -> None:
        """Stop the workers (waits for submitted CRFs)."""
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None

    def __enter__(self) -> CRFPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_executor"] = None
        return state

    def __del__(self) -> None:
        executor = getattr(self, "_executor", None)
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


def dense_crf_batch(
    images: Sequence[np.ndarray],
    probs: Sequence[np.ndarray],
    params: CRFSettings = DEEPLAB_TEST_CRF,
    processes: int = 0,
    output: Output = "probs",
) -> list[np.ndarray]:
    """:func:`dense_crf` over many images, with ``processes`` workers (0 = in this process).

    Starts and stops a pool per call; keep a :class:`CRFPool` open to reuse workers.
    """
    with CRFPool(processes) as pool:
        return pool.map(images, probs, params, output)
