"""What the plugins registered: model, dataset, loss and metric specifications."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from workbench.base.errors import PluginError, nearest
from workbench.base.params import HyperParam

if TYPE_CHECKING:
    import torch

    from workbench.modeling.model import AdversarialLoss, GanModel


@dataclass(frozen=True)
class ModelSpec:
    """A model plugin.

    :param name: the name used with ``--plugin``.
    :param description: one line.
    :param build: ``build(hp, data) -> GanModel``; ``hp`` holds every declared hyper-parameter, ``data`` is a
        ``DataInfo``: the image shape ``(C, H, W)`` (it is that tuple) with the dataset's classes.
    :param hyperparams: every tunable value, with defaults (see ``training_params``).
    :param dataset: the dataset used when the user names none.
    :param loss: the loss used when the user names none.
    :param version: the plugin's version, stored in checkpoints.
    :param engine_defaults: engine settings the model trains with unless ``--set`` says otherwise (a modern
        model: ``{"ema_kimg": 10, "augment": "diffaug"}``).
    """

    name: str
    description: str
    build: Callable[[dict[str, Any], DataInfo], GanModel]
    hyperparams: tuple[HyperParam, ...]
    dataset: str = "fashion-mnist-test"
    loss: str = "bce"
    version: str = "1"
    engine_defaults: dict[str, Any] = field(default_factory=dict)

    def param(self, name: str) -> HyperParam | None:
        return next((p for p in self.hyperparams if p.name == name), None)

    def defaults(self) -> dict[str, Any]:
        return {p.name: p.default for p in self.hyperparams}


class DataInfo(tuple):
    """What a model's ``build`` learns about the data: the image shape and the classes.

    It *is* the image shape tuple ``(channels, size, size)``, so a ``build(hp, image_shape)`` written
    for unconditional models keeps working unchanged; a conditional model reads ``n_classes`` and
    ``classes`` from it as well. ``classes`` is empty for an unlabelled dataset.
    """

    classes: tuple[str, ...]

    def __new__(cls, channels: int, size: int, classes: tuple[str, ...] | list[str] = ()):
        info = super().__new__(cls, (int(channels), int(size), int(size)))
        info.classes = tuple(str(name) for name in classes)
        return info

    def __getnewargs__(self):  # copy.deepcopy and pickle rebuild it through __new__
        return self[0], self[1], self.classes

    @property
    def channels(self) -> int:
        return self[0]

    @property
    def size(self) -> int:
        return self[1]

    @property
    def n_classes(self) -> int:
        """The number of classes; 0 for an unlabelled dataset."""
        return len(self.classes)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """The plain tuple ``(C, H, W)``."""
        return tuple(self)

    def __repr__(self) -> str:
        return f"DataInfo(channels={self[0]}, size={self[1]}, classes={self.classes!r})"


@dataclass(frozen=True)
class DataRequest:
    """What the engine asks a dataset for.

    :param root: the folder given with ``--data-root``, or None for the dataset's own search.
    :param download: True when the user allowed downloading (``--download``).
    :param image_size: the side the model wants; a dataset may resize to it while decoding.
    :param split: ``"train"`` or ``"test"``.
    :param cache_dir: where decoded images may be cached; the engine leaves it None, so a dataset picks its
        own place (``workbench.base.paths.data_home()``); the test kit sets a temporary folder.
    """

    root: Path | None
    download: bool
    image_size: int
    split: str = "train"
    cache_dir: Path | None = None


@dataclass
class ImageData:
    """Decoded images: uint8, shape (N, C, H, W), values 0..255; labels optional (N,) int64.

    ``fields``: named image fields for image-to-image models, uint8 (M, C, H, W) each: ``source`` (paired, one
    input per image) or ``domain_b`` (unpaired, a second domain); see ``workbench.host.translation``.
    """

    images: torch.Tensor
    labels: torch.Tensor | None = None
    source: str = ""
    classes: tuple[str, ...] = ()
    fields: dict[str, torch.Tensor] = field(default_factory=dict)


@dataclass(frozen=True)
class DatasetSpec:
    """A dataset plugin.

    :param name: the name used with ``--dataset``.
    :param description: one line.
    :param load: ``load(DataRequest) -> ImageData``; raise ``DataError`` with one clear sentence.
    """

    name: str
    description: str
    load: Callable[[DataRequest], ImageData]


@dataclass(frozen=True)
class LossSpec:
    """An adversarial loss plugin.

    :param name: the name used with ``--loss``.
    :param description: one line.
    :param build: ``build() -> AdversarialLoss``.
    """

    name: str
    description: str
    build: Callable[[], AdversarialLoss]


@dataclass(frozen=True)
class MetricSpec:
    """A sample-quality metric plugin, computed by ``ganbench eval`` and every ``eval_every`` steps.

    :param name: the name used with ``ganbench eval --metric`` and ``ganbench runs --sort``.
    :param description: one line; say which feature space the number lives in.
    :param compute: ``compute(MetricContext) -> float``; raise ``GanbenchError`` with one clear sentence
        when the metric cannot be computed (no labels, missing weights).
    :param lower_is_better: the direction ``ganbench runs --sort`` ranks by.
    :param default: computed when no ``--metric`` is named; heavy or optional metrics say False.
    :param available: ``available() -> str | None``: None when usable here, else the sentence saying why not.
    :param needs_labels: computed only on samples drawn for given classes (``MetricContext.labels``), that is
        for conditional models; skipped for the others unless named with ``--metric``.
    :param samples: the generated images its protocol asks for when ``ganbench eval`` is given no ``-n``
        (``fid``: 50,000, as papers report it); None for the default (10,000).
    """

    name: str
    description: str
    compute: Callable[[Any], float]  # compute(workbench.api.MetricContext) -> float
    lower_is_better: bool = True
    default: bool = True
    available: Callable[[], str | None] | None = None
    needs_labels: bool = False
    samples: int | None = None


@dataclass
class Registered:
    """One registered item and the plugin (and distribution) that registered it."""

    spec: Any
    plugin: str
    dist: str


@dataclass
class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    models: dict[str, Registered] = field(default_factory=dict)
    datasets: dict[str, Registered] = field(default_factory=dict)
    losses: dict[str, Registered] = field(default_factory=dict)
    metrics: dict[str, Registered] = field(default_factory=dict)
    workloads: dict[str, Registered] = field(default_factory=dict)  # benchmark workloads (``ganbench bench``)

    def model(self, name: str) -> ModelSpec:
        return _lookup(self.models, name, "model plugin", "--plugin")

    def dataset(self, name: str) -> DatasetSpec:
        return _lookup(self.datasets, name, "dataset", "--dataset")

    def loss(self, name: str) -> LossSpec:
        return _lookup(self.losses, name, "loss", "--loss")

    def metric(self, name: str) -> MetricSpec:
        return _lookup(self.metrics, name, "metric", "--metric")


def _lookup(table: dict[str, Registered], name: str, kind: str, flag: str):
    if name in table:
        return table[name].spec
    known = ", ".join(sorted(table)) or "none"
    raise PluginError(f'Unknown {kind} "{name}".{nearest(name, table)} Known: {known} (see `ganbench plugins`).')
