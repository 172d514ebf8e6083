"""Named and URL weights: the cache file each one is read from, fetched once, or a one-line error.

``encoder_weights`` names a file in one of three ways (a local path needs none of this):

- a hub name of the backbone: ``"imagenet"`` (smp's ImageNet weights of an smp encoder, from the
  Hugging Face repository smp pins; torchvision's ImageNet VGG16 for the VGG16 trunks) or ``"coco"``
  (``deeplabv2_caffe_resnet101``: the DeepLab authors' COCO initialisation converted to PyTorch,
  ``deeplabv1_resnet101-coco.pth``, which no stable public URL serves);
- a URL (``https://``, ``http://``, ``file://``), e.g. a mirror of a file; the file's name in the
  cache carries a hash of the URL.

Every such file lives in the torch hub cache, ``<TORCH_HOME>/hub/checkpoints/<file name>``
(:func:`cache_dir`; torchvision's own downloads use the same folder), and is read from there on
every later build. smp weights already in the Hugging Face cache (``HF_HOME``) are read from there.
A missing file is downloaded with :func:`sal_lightning._download.download_file`; without network it
fails in seconds with one line naming the cache path that would serve, how to fill it
(``sal-lightning weights download --config CFG`` on a machine with network) and that a local path
works too. ``HF_ENDPOINT`` sets the Hugging Face mirror, as for ``huggingface_hub``.
"""

from __future__ import annotations

import hashlib
import os
import socket
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from sal_lightning._download import download_file
from sal_lightning.nn.weights import looks_like_path

V2_PREFIX = "deeplabv2_"
SMP_PREFIX = "deeplabv3_"
CAFFE_BACKBONE = "deeplabv2_caffe_resnet101"
VGG_BACKBONES = ("vgg16_largefov", "vgg16_aspp")
VGG16_IMAGENET_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
#: seconds to wait for a connection before calling a host unreachable
PROBE_TIMEOUT = 5.0

COCO_INIT_HOW = (
    "no stable public URL serves it: convert the DeepLab authors' init.caffemodel (in "
    "http://liangchiehchen.com/projects/released/deeplab_aspp_resnet101/prototxt_and_model.zip) with "
    "kazuto1011/deeplab-pytorch's `python convert.py --dataset coco`, then copy the .pth there or set "
    "encoder_weights to its path or to a URL that serves it (docs/backbones.md)"
)


@dataclass(frozen=True)
class WeightsFile:
    """One named or URL weights file.

    Attributes:
        label: what it is, for messages (``"smp's ImageNet resnet101 (smp-hub/resnet101.imagenet)"``).
        filename: its name in :func:`cache_dir`.
        url: where to download it; ``None`` when no public URL serves it.
        how: how to get it when ``url`` is ``None``.
        also: other files that serve it when present (the Hugging Face cache's copy).
    """

    label: str
    filename: str
    url: str | None
    how: str = ""
    also: tuple[Path, ...] = field(default=())

    @property
    def path(self) -> Path:
        """Where the run reads it: ``cache_dir() / filename``."""
        return cache_dir() / self.filename


COCO_INIT = WeightsFile(
    "the DeepLab authors' COCO initialisation of the Caffe ResNet-101 (deeplabv1_resnet101-coco.pth)",
    "deeplabv1_resnet101-coco.pth",
    None,
    COCO_INIT_HOW,
)


def cache_dir() -> Path:
    """``<TORCH_HOME>/hub/checkpoints`` (``torch.hub.get_dir()``), where named and URL weights live."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def looks_like_url(value: object) -> bool:
    return isinstance(value, str) and value.lower().startswith(("http://", "https://", "file://"))


def url_weights(url: str) -> WeightsFile:
    """The :class:`WeightsFile` of a URL: cached as ``<stem>-<8 hex digits of the URL's SHA-256><suffix>``
    (two URLs ending in the same file name do not share a cache file)."""
    name = os.path.basename(urllib.parse.unquote(urllib.parse.urlparse(url).path))
    if not name:
        raise ValueError(f"encoder_weights: the URL {url!r} names no file (it must end in a file name)")
    stem, suffix = os.path.splitext(name)
    tag = hashlib.sha256(url.encode()).hexdigest()[:8]
    return WeightsFile(f"the file at {url}", f"{stem}-{tag}{suffix}", url)


def _hf_cached(repo_id: str, revision: str) -> tuple[Path, ...]:
    """The Hugging Face cache's copy of an smp weights file (``HF_HUB_CACHE``, or ``HF_HOME/hub``)."""
    home = os.environ.get("HF_HOME", os.path.join(os.path.expanduser("~"), ".cache", "huggingface"))
    cache = os.environ.get("HF_HUB_CACHE", os.path.join(home, "hub"))
    try:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(repo_id, "model.safetensors", cache_dir=cache, revision=revision)
    except Exception:  # no huggingface_hub, or an unreadable cache: just not there
        return ()
    return (Path(found),) if isinstance(found, str) else ()


def smp_weights(encoder: str, name: str) -> WeightsFile | None:
    """The file of smp's weights ``name`` for the smp ``encoder``; ``None`` for timm encoders
    (``tu-...``: timm fetches and caches its own). Raises ``ValueError`` for an unknown name."""
    if encoder.startswith("tu-"):
        return None
    from segmentation_models_pytorch.encoders import encoders

    if encoder not in encoders:
        raise ValueError(f"encoder_name: {encoder!r} is not a segmentation-models-pytorch encoder")
    settings = encoders[encoder]["pretrained_settings"]
    if name not in settings:
        hint = f" ('coco' is the hub name of {CAFFE_BACKBONE})" if name == "coco" else ""
        raise ValueError(
            f"encoder_weights: {encoder} has the hub names {sorted(settings)}, got {name!r}{hint}"
        )
    entry = settings[name]
    if "url" in entry:
        return url_weights(entry["url"])
    repo, revision = entry["repo_id"], entry["revision"]
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co").rstrip("/")
    return WeightsFile(
        f"smp's {name} weights of {encoder} ({repo})",
        f"{repo.replace('/', '--')}-{revision[:10]}.safetensors",
        f"{endpoint}/{repo}/resolve/{revision}/model.safetensors",
        also=_hf_cached(repo, revision),
    )


def named_weights(backbone: str, name: str) -> WeightsFile | None:
    """The file of the hub name ``name`` of a :func:`~sal_lightning.nn.build_deeplab` network
    (``None``: the encoder's library fetches it); ``ValueError`` when the network has no such name."""
    if backbone == CAFFE_BACKBONE:
        if name != "coco":
            raise ValueError(f"encoder_weights: {backbone} knows the hub name 'coco' only, got {name!r}")
        return COCO_INIT
    if backbone in VGG_BACKBONES:
        if name != "imagenet":
            raise ValueError(f"encoder_weights: {backbone} knows the hub name 'imagenet' only, got {name!r}")
        return WeightsFile("torchvision's ImageNet VGG16", "vgg16-397923af.pth", VGG16_IMAGENET_URL)
    for prefix in (V2_PREFIX, SMP_PREFIX):
        if backbone.startswith(prefix) and len(backbone) > len(prefix):
            return smp_weights(backbone[len(prefix) :], name)
    raise ValueError(f"encoder_weights: the network {backbone!r} has no hub names")


def _probe(url: str) -> None:
    """Raise ``OSError`` unless ``url``'s host accepts a connection within :data:`PROBE_TIMEOUT`."""
    parts = urllib.parse.urlparse(url)
    if parts.scheme not in ("http", "https") or urllib.request.getproxies().get(parts.scheme):
        return  # file:// needs no network; behind a proxy only urllib's own request can tell
    port = parts.port or (443 if parts.scheme == "https" else 80)
    with socket.create_connection((parts.hostname or "", port), timeout=PROBE_TIMEOUT):
        pass


def fetch(weights: WeightsFile, what: str, progress: bool = True) -> Path:
    """The local file of ``weights``: the cached copy, else downloaded into :func:`cache_dir`.

    ``what`` names the setting in messages (``"encoder_weights 'imagenet'"``). Raises
    ``FileNotFoundError`` when it is missing and has no URL, ``OSError`` (one line, in seconds)
    when it is missing and its URL cannot be reached.
    """
    target = weights.path
    for candidate in (target, *weights.also):
        if candidate.is_file():
            return candidate
    if weights.url is None:
        raise FileNotFoundError(f"{what}: {weights.label} is not at {target}; {weights.how}")
    try:
        _probe(weights.url)
        return download_file(weights.url, target, progress=progress)
    except (OSError, urllib.error.URLError) as error:
        reason = getattr(error, "reason", None) or error
        raise OSError(
            f"{what}: {weights.label} is not in the cache ({target}) and {weights.url} cannot be "
            f"downloaded ({reason}); on a machine with network run `sal-lightning weights download "
            f"--config CFG` with the same TORCH_HOME, or copy the file to that path, or set "
            f"encoder_weights to a local file path"
        ) from error


def check_weights_value(value: object, backbone: str | None = None, encoder: str | None = None) -> None:
    """Check an ``encoder_weights`` setting without network or reading a file: a local file exists
    (``FileNotFoundError``, with how to get the COCO initialisation when it is that file), a URL
    names a file, a hub name is one of the network's (``backbone``) or smp encoder's (``encoder``)."""
    if value is None:
        return
    if not isinstance(value, str | os.PathLike):
        raise ValueError(f"encoder_weights: expected a hub name, a URL or a file path, got {value!r}")
    if looks_like_url(value):
        url_weights(str(value))
    elif looks_like_path(value):
        path = Path(value)
        if not path.is_file():
            how = f"; {COCO_INIT.how}" if path.name == COCO_INIT.filename else ""
            raise FileNotFoundError(f"encoder_weights: weights file {str(path)!r} not found{how}")
    elif backbone is not None:
        named_weights(backbone, str(value))
    elif encoder is not None:
        smp_weights(encoder, str(value))
