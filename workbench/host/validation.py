"""The contracts a plugin keeps, checked where its code is called, with the blame on the plugin.

Three moments:

- **registration**: ``check_spec`` lists what is wrong with a spec (a model
  without ``build``, a name with a slash); the plugin manager drops it and
  reports the plugin.
- **use**: ``guard`` wraps a dataset's ``load`` and a loss's or model's
  ``build`` so that what they return is checked the moment they return it.
- **before training**: ``check_before_training`` draws a few images from the
  generator, computes the loss on sample logits and takes one training step on
  a copy of the model, so a broken contract fails in a second, not hours into
  a run. The model itself and the random number streams are left untouched.

Every error is a ``PluginError`` naming the plugin, its distribution and what
it returned.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import re
from collections.abc import Mapping
from typing import Any, Callable

import torch

from workbench.base.errors import ConfigError, GanbenchError, PluginError
from workbench.base.params import HyperParam
from workbench.host.registry import DatasetSpec, LossSpec, MetricSpec, ModelSpec
from workbench.host.translation import SOURCE, is_translator
from workbench.host.workloads import Workload
from workbench.modeling.metrics import METRIC_KEYS
from workbench.modeling.model import GanModel

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
REQUIRED_HYPERPARAMS = ("batch_size", "epochs")
# The function-valued fields of each spec type.
_CALLABLE_FIELDS = {ModelSpec: ("build",), DatasetSpec: ("load",), LossSpec: ("build",), MetricSpec: ("compute",),
                    Workload: ("classic", "classic_data")}
_RANGE_TOLERANCE = 1e-3
_TRIAL_BATCH = 8


# -- registration ----------------------------------------------------------
def check_spec(spec: Any) -> list[str]:
    """What is wrong with a registered spec, as phrases ("its build is None, not a function"); empty when valid."""
    problems: list[str] = []
    name = getattr(spec, "name", None)
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        problems.append(f"the name {name!r} is not 1 to 64 letters, digits, '.', '_' or '-' starting with a "
                        f"letter or digit")
    if not isinstance(getattr(spec, "description", None), str):
        problems.append(f"its description is {getattr(spec, 'description', None)!r}, not a string")
    for field in next((fields for kind, fields in _CALLABLE_FIELDS.items() if isinstance(spec, kind)), ()):
        value = getattr(spec, field, None)
        if not callable(value):
            problems.append(f"its {field} is {value!r}, not a function")
    if isinstance(spec, ModelSpec):
        problems += _model_spec_problems(spec)
    return problems


def _model_spec_problems(spec) -> list[str]:
    problems = []
    params = spec.hyperparams
    if not isinstance(params, (tuple, list)) or not all(isinstance(p, HyperParam) for p in params):
        return problems + ["its hyperparams must be a tuple of workbench.base.params.HyperParam"]
    names = [p.name for p in params]
    doubled = sorted({n for n in names if names.count(n) > 1})
    if doubled:
        problems.append(f"it declares {', '.join(doubled)} more than once")
    missing = [n for n in REQUIRED_HYPERPARAMS if n not in names]
    if missing:
        problems.append(f"it declares no {' or '.join(missing)} hyper-parameter (start from training_params(...))")
    for param in params:
        try:
            param.check(param.default)
        except ConfigError as exc:
            problems.append(f"the default of {param.name} is not allowed ({exc})")
    for field in ("dataset", "loss", "version"):
        if not isinstance(getattr(spec, field), str):
            problems.append(f"its {field} is {getattr(spec, field)!r}, not a string")
    return problems


# -- use -------------------------------------------------------------------
def describe_plugin(kind: str, name: str, plugin: str, dist: str) -> str:
    """``Model "wgan" (plugin example_wgan from ganbench-example-plugin)``: the subject of every blame sentence."""
    return f'{kind.capitalize()} "{name}" (plugin {plugin} from {dist})'


def guard(spec: Any, plugin: str, dist: str) -> Any:
    """The spec with its functions wrapped so that what they return is checked, blaming ``plugin`` of ``dist``.

    A dataset's ``load`` and a loss's ``build`` that raise something other than a
    ``GanbenchError`` are reported as the plugin's error. A model's ``build`` keeps
    its exceptions (``ValueError`` means "these settings do not fit", and callers
    handle it); what it returns is checked.
    """
    if isinstance(spec, DatasetSpec):
        who = describe_plugin("dataset", spec.name, plugin, dist)
        return dataclasses.replace(spec, load=_checked(spec.load, who, "load()", check_image_data, wrap_errors=True))
    if isinstance(spec, LossSpec):
        who = describe_plugin("loss", spec.name, plugin, dist)
        return dataclasses.replace(spec, build=_checked(spec.build, who, "build()", _check_loss_object,
                                                        wrap_errors=True))
    if isinstance(spec, ModelSpec):
        who = describe_plugin("model", spec.name, plugin, dist)
        return dataclasses.replace(spec, build=_checked(spec.build, who, "build()", _check_model_object,
                                                        wrap_errors=False))
    return spec


def _checked(function: Callable, who: str, what: str, check: Callable[[Any, str], None], wrap_errors: bool):
    @functools.wraps(function)
    def call(*args, **kwargs):
        if wrap_errors:
            result = _call_blaming(who, what, function, *args, **kwargs)
        else:
            result = function(*args, **kwargs)
        check(result, who)
        return result

    return call


def _call_blaming(who: str, what: str, function: Callable, *args, **kwargs):
    try:
        return function(*args, **kwargs)
    except (GanbenchError, torch.cuda.OutOfMemoryError):
        raise
    except Exception as exc:
        raise PluginError(f"{who}: {what} raised {type(exc).__name__}: {_first_line(exc)}.") from exc


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else "(no message)"


def describe_value(value: Any) -> str:
    """A short account of what a plugin returned: ``a float32 tensor of shape (8, 784) on cpu``, ``a float``."""
    if isinstance(value, torch.Tensor):
        return f"a {str(value.dtype).removeprefix('torch.')} tensor of shape {tuple(value.shape)} on {value.device}"
    if value is None:
        return "None"
    return f"a {type(value).__name__}"


def check_image_data(data: Any, who: str) -> None:
    """A dataset's ``ImageData``: uint8 images (N, C, H, W) with C 1 or 3, optional integer labels (N,)."""
    if not hasattr(data, "images"):
        raise PluginError(f"{who}: load() returned {describe_value(data)}; it must return a "
                          f"workbench.host.registry.ImageData.")
    images = data.images
    shape = tuple(images.shape) if isinstance(images, torch.Tensor) else ()
    if not isinstance(images, torch.Tensor) or images.dtype != torch.uint8 or images.dim() != 4:
        raise PluginError(f"{who}: load() returned images as {describe_value(images)}; they must be a "
                          f"torch.uint8 tensor of shape (N, C, H, W) with values 0..255.")
    if shape[1] not in (1, 3) or shape[2] < 1 or shape[3] < 1:
        raise PluginError(f"{who}: load() returned images of shape {shape}; (N, C, H, W) needs C = 1 (grey) "
                          f"or 3 (RGB) and a height and width of at least 1.")
    labels = getattr(data, "labels", None)
    if labels is not None and (not isinstance(labels, torch.Tensor) or labels.shape != (shape[0],)
                               or labels.is_floating_point() or labels.is_complex()):
        raise PluginError(f"{who}: load() returned labels as {describe_value(labels)} for {shape[0]} images; "
                          f"they must be None or an integer tensor of shape ({shape[0]},).")
    fields = getattr(data, "fields", None) or {}
    for name, value in (fields.items() if isinstance(fields, Mapping) else [("fields", fields)]):
        if not isinstance(value, torch.Tensor) or value.dtype != torch.uint8 or value.dim() != 4 \
                or value.shape[1] not in (1, 3):
            raise PluginError(f"{who}: load() returned the image field {name} as {describe_value(value)}; image "
                              f"fields must be torch.uint8 tensors of shape (M, C, H, W) with C = 1 or 3.")
    classes = getattr(data, "classes", ())
    if not isinstance(classes, (tuple, list)) or not all(isinstance(c, str) for c in classes):
        raise PluginError(f"{who}: load() returned classes as {describe_value(classes)}; they must be a tuple "
                          f"of strings.")


def _check_loss_object(loss: Any, who: str) -> None:
    missing = [m for m in ("d_loss", "g_loss", "penalty", "score") if not callable(getattr(loss, m, None))]
    if missing:
        raise PluginError(f"{who}: build() returned {describe_value(loss)}, which has no {', '.join(missing)}; "
                          f"subclass workbench.modeling.model.AdversarialLoss.")


def _check_model_object(model: Any, who: str) -> None:
    if not isinstance(model, GanModel):
        raise PluginError(f"{who}: build() returned {describe_value(model)}; it must return a "
                          f"workbench.modeling.model.GanModel (for example a TwoNetworkGAN).")
    networks = model.networks
    if not isinstance(networks, dict) or not networks or \
            not all(isinstance(k, str) and isinstance(v, torch.nn.Module) for k, v in networks.items()):
        raise PluginError(f"{who}: build() returned a model whose networks are {describe_value(networks)}; "
                          f"they must be a non-empty dict of name -> torch.nn.Module.")
    latent = model.latent_dim
    least = 0 if is_translator(model) else 1  # an image-to-image model may take no noise at all
    if not isinstance(latent, int) or isinstance(latent, bool) or latent < least:
        raise PluginError(f"{who}: build() returned a model with latent_dim {latent!r}; it must be a whole "
                          f"number of at least {least}.")


# -- before training ---------------------------------------------------------
def check_before_training(registry, config, model, loss, data, image_shape: tuple[int, int, int]) -> None:
    """Try the model and the loss on a few real images before a run starts; raise PluginError with the blame.

    Checks, in this order: the loss on sample logits (scalar, finite, with a
    gradient), the generator (shape ``(n, *image_shape)``, floating point, on the
    training device, finite, within [-1, 1]) and one ``train_step`` (the four
    metrics as finite scalar tensors). A model declaring ``batch_fields`` gets the
    real batch's fields (its labels) in the step, and labels in ``generate``. The step runs on deep copies of the model
    and the loss, and the global random number generators are restored
    afterwards, so the run that follows is the same as without the check.
    """
    model_who = _who(registry.models, "model", config.model)
    loss_who = _who(registry.losses, "loss", config.loss)
    device = data.device
    n = max(2, min(_TRIAL_BATCH, data.batch_size))
    cuda = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=cuda):
        torch.manual_seed(config.seed)
        trial_loss = _copy_or_none(loss) or loss  # a loss that counts its calls keeps its count
        check_loss_values(trial_loss, loss_who, device, n)
        trial = _copy_or_none(model)
        if trial is not None:
            trial.noise = torch.Generator(device=device).manual_seed(config.seed)
            _run_eagerly(trial)
        idx = next(iter(data.batch_indices(0)))[:n]
        fields = data.fields(idx, tuple(model.batch_fields))
        source = None
        if is_translator(model):  # a paired model translates its sources, an unpaired one domain A
            source = fields[SOURCE] if SOURCE in fields else data.take(idx)
        check_generator(trial or model, model_who, image_shape, device, n, in_place=trial is None,
                        labels=fields.get("labels"), source=source)
        if trial is not None:
            check_train_step(trial, trial_loss, data.take(idx), model_who, config.loss, fields)


def _who(table: dict, kind: str, name: str) -> str:
    item = table.get(name)
    return describe_plugin(kind, name, item.plugin, item.dist) if item else f'{kind.capitalize()} "{name}"'


def _run_eagerly(model) -> None:
    """Drop ``nn.Module.compile`` from a copy: its compiled call is bound to the original module's forward."""
    for net in model.networks.values():
        for module in net.modules():
            if getattr(module, "_compiled_call_impl", None) is not None:
                module._compiled_call_impl = None


def _copy_or_none(thing):
    """A deep copy to try things on, or None when it cannot be copied (then fewer checks run)."""
    try:
        return copy.deepcopy(thing)
    except Exception:
        return None


def check_loss_values(loss, who: str, device: torch.device, n: int) -> None:
    """The loss on random logits of shape (n,): d_loss and g_loss scalar, finite and differentiable; score finite."""
    real = torch.randn(n, device=device, requires_grad=True)
    fake = torch.randn(n, device=device, requires_grad=True)
    d_value = _call_blaming(who, "d_loss(real_logits, fake_logits)", loss.d_loss, real, fake)
    _check_scalar(d_value, who, "d_loss(real_logits, fake_logits)", needs_grad=True)
    if getattr(loss, "relativistic", False):  # RpGAN judges each fake against a real: both logits
        g_call = "g_loss(fake_logits, real_logits)"
        g_value = _call_blaming(who, g_call, loss.g_loss, fake, real)
    else:
        g_call = "g_loss(fake_logits)"
        g_value = _call_blaming(who, g_call, loss.g_loss, fake)
    _check_scalar(g_value, who, g_call, needs_grad=True)
    _check_scalar(_call_blaming(who, "score(logits)", loss.score, real), who, "score(logits)", needs_grad=False)


def _check_scalar(value: Any, who: str, what: str, needs_grad: bool) -> None:
    if not isinstance(value, torch.Tensor) or value.dim() != 0:
        raise PluginError(f"{who}: {what} returned {describe_value(value)}; it must return a scalar tensor "
                          f"(shape ()).")
    number = value.detach().float().item()
    if not math.isfinite(number):
        raise PluginError(f"{who}: {what} returned {number} for ordinary logits; it must be finite.")
    if needs_grad and not value.requires_grad:
        raise PluginError(f"{who}: {what} returned a tensor that does not depend on the logits (no gradient "
                          f"flows back); do not detach it or call .item().")


def check_generator(model, who: str, image_shape: tuple[int, int, int], device: torch.device, n: int,
                    in_place: bool = False, labels: torch.Tensor | None = None,
                    source: torch.Tensor | None = None) -> None:
    """``generate`` on noise (n, latent_dim): floating images (n, *image_shape) on ``device``, finite, in [-1, 1].

    :param in_place: the model is the real one, not a copy: generate in eval mode so no statistics change.
    :param labels: (n,) class labels for a conditional model's ``generate(z, labels)``.
    :param source: (n, *image_shape) input images for an image-to-image model's ``generate(z, source=...)``.
    """
    z = torch.randn(n, model.latent_dim, device=device)
    if in_place:
        model.train(False)
    try:
        with torch.no_grad():
            if source is not None:
                images = _call_blaming(who, "generate(z, source=images)", model.generate, z, source=source)
            else:
                images = _call_blaming(who, "generate()", model.generate, z, *([] if labels is None else [labels]))
    finally:
        if in_place:
            model.train(True)
    got = describe_value(images)
    expected = (n, *image_shape)
    if not isinstance(images, torch.Tensor) or tuple(images.shape) != expected or not images.is_floating_point():
        raise PluginError(f"{who}: generate() returned {got} for noise of shape {tuple(z.shape)}; it must return "
                          f"floating-point images of shape {expected}.")
    if images.device.type != device.type:
        raise PluginError(f"{who}: generate() returned {got} for noise on {device}; keep every tensor on the "
                          f"noise's device.")
    low, high = images.min().float().item(), images.max().float().item()
    if not (math.isfinite(low) and math.isfinite(high)):
        raise PluginError(f"{who}: generate() returned NaN or infinite values.")
    if low < -1 - _RANGE_TOLERANCE or high > 1 + _RANGE_TOLERANCE:
        raise PluginError(f"{who}: generate() returned values from {low:.3g} to {high:.3g}; images must lie in "
                          f"[-1, 1] (end the generator with tanh).")


# the fields every metrics event has besides the metrics: a declared metric may not take their names
RESERVED_EVENT_FIELDS = ("type", "time", "step", "epoch", "batch", "kimg", "images_per_s", "aug_p")


def check_train_step(model, loss, real: torch.Tensor, who: str, loss_name: str,
                     fields: Mapping[str, torch.Tensor] | None = None) -> None:
    """One ``train_step``: it must return d_loss, g_loss, d_real and d_fake as finite scalar tensors on the device.

    :param fields: the batch fields the model declared (``labels``), passed as keywords.
    """
    metrics = _call_blaming(who, f"train_step() with loss {loss_name}", model.train_step, real, loss,
                            **(fields or {}))
    if not isinstance(metrics, Mapping):
        raise PluginError(f"{who}: train_step() returned {describe_value(metrics)}; it must return a dict of "
                          f"{', '.join(METRIC_KEYS)}.")
    declared = tuple(getattr(model, "metric_keys", ()))
    reserved = [k for k in declared if not isinstance(k, str) or k in RESERVED_EVENT_FIELDS or k in METRIC_KEYS]
    if reserved:
        raise PluginError(f"{who}: metric_keys names {', '.join(map(str, reserved))}, which the metrics events "
                          f"already use for something else; choose other names.")
    keys = tuple(METRIC_KEYS) + declared
    missing = [k for k in keys if k not in metrics]
    if missing:
        raise PluginError(f"{who}: train_step() returned the keys {', '.join(map(str, metrics)) or 'none'}; "
                          f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} missing (the four, and what metric_keys "
                          f"declares).")
    for key in keys:
        value = metrics[key]
        if not isinstance(value, torch.Tensor) or value.dim() != 0:
            raise PluginError(f"{who}: train_step() returned {key} as {describe_value(value)}; it must be a scalar "
                              f"tensor (shape ()) left on the device, not a number from .item().")
        if value.device.type != real.device.type:
            raise PluginError(f"{who}: train_step() returned {key} on {value.device}, the batch is on "
                              f"{real.device}; leave the metrics on the batch's device.")
        number = value.detach().float().item()
        if not math.isfinite(number):
            raise PluginError(f"{who}: train_step() with loss {loss_name} returned {key} = {number} after one step "
                              f"on real images.")
